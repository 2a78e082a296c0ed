from resdsl.cli.main import main

main()
