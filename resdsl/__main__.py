from resdsl.cli import main

main()
