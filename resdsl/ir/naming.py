"""State-dict layouts: how a network's layers are named in each framework, as data.

A naming scheme maps each role a layer plays (the stem's convolution, a block's n-th norm, a
shortcut's i-th layer, the classifier) to its PyTorch path inside its owner (the model for the
stem and head, the block for a block's layers) and its Keras layer name (inside a block, the
part after the block's prefix). Elaboration names every layer from the spec's scheme (the
`naming` setting), once; weight porting, both importers and the Keras backend read those names
or the same table. Templates take `{n}` (a block's convolution, from 1), `{m}` (n - 1), `{i}`
(a position in a PyTorch Sequential or list), `{k}` (i + 1), `{part}` (a Keras name's last
word: conv, bn, pool, ...), `{unit}` (a layer's attribute in timm's ConvNormAct: conv, bn, act),
`{shape}` (a block convolution's kernel in byobnet's words: `1x1` or `kxk`), `{fuse}` (global
context's: add or scale), `{place}` (byobnet's attention: "" after the 3x3, `_last` at the
branch's end), `{act}` (the activation's module name in PyTorch, its function's name in
Keras), and for the block prefix
`{stage}` (the stage's name), `{position}` (the stage's, from 0), `{index}` (the block's, from
0), `{number}` (from 1) and `{letter}` (Keras 2's RegNet block letter: X, Y with attention, Z
inverted, V pre-activation). `{conv}` is a block convolution in Keras 2's RegNet words
(`conv_1x1_1`, `conv_3x3`, `conv_1x1_2`), and `{at}` a shortcut layer's place in its
Sequential (`.{i}`; "" where the shortcut is one layer, which PyTorch then holds alone). The
`stage` role names the stages a generator writes (`stages regnet(...)`): `{number}` from 1.

`containers` are the model's attributes that hold named modules in order (byobnet's `stem`,
`stages` and `head`; torchvision's RegNet `trunk_output`): the PyTorch backend writes each as
one `nn.Sequential` of them; `block_containers` are a block's (torchvision's RegNet `f`). A
block convolution's `{step}` is its letter in torchvision's BottleneckTransform (`a`, `b`,
`c`). With
`shortcut_first`, a block's shortcut comes before its branch in the state dict (byobnet's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    name: str
    summary: str
    roles: Mapping[str, tuple[str, str]]  # role -> (PyTorch template, Keras template)
    containers: tuple[str, ...] = ()
    shortcut_first: bool = False  # a block registers its shortcut before its branch
    block_containers: tuple[str, ...] = ()  # a block's attributes that hold named modules

    def torch(self, role: str, **fields) -> str:
        return self.roles[role][0].format(**fields)

    def keras(self, role: str, **fields) -> str:
        return self.roles[role][1].format(**fields)


# torchvision's and timm's resnet.py (`layer1.0.conv1`, `downsample.0`, `fc`) with
# keras.applications' ResNet names (`conv2_block1_1_conv`, `0_conv`, `predictions`).
RESNET = Naming(
    "resnet",
    "torchvision's and timm's resnet.py; keras.applications' ResNet names in Keras",
    {
        # the stem: one convolution (`conv1`, `bn1`), or timm's deep stem, a `conv1`
        # Sequential whose last norm is `bn1`; the pool, or what replaces it, `maxpool`
        "stem.conv": ("conv1", "conv1_conv"),
        "stem.norm": ("bn1", "conv1_bn"),
        "stem.act": ("{act}", "conv1_{act}"),
        "stem.deep": ("conv1.{i}", "conv1_{n}_{part}"),
        "stem.deep.last_norm": ("bn1", "conv1_{n}_bn"),
        "stem.deep.last_act": ("{act}", "conv1_{n}_{act}"),
        "stem.pool": ("maxpool", "pool1_pool"),
        "stem.avg_pool": ("pool", "pool1_pool"),
        "stem.pool.part": ("maxpool.{i}", "pool1_{part}"),
        # quad stems: convolutions before the first norm (no norm or activation of their own)
        "stem.plain": ("conv1.{i}", "conv1_{n}_conv"),
        # a one-convolution stem without a norm (timm's pre-activation RegNets: the model's
        # `stem` is the convolution)
        "stem.bare": ("conv1", "conv1_conv"),
        # the stages a generator writes
        "stage": ("layer{number}", ""),
        # a block: its prefix, then its layers inside it
        "block": ("{stage}.{index}", "{stage}_block{number}"),
        "block.conv": ("conv{n}", "{n}_conv"),
        # a pre-activation block's convolutions, which no norm follows in their unit
        "block.preact_conv": ("conv{n}", "{n}_conv"),
        "block.norm": ("bn{n}", "{n}_bn"),
        "block.act": ("{act}", "{n}_{act}"),
        # pre-activation: the norm and activation before convolution n
        "block.preact_norm.first": ("bn1", "preact_bn"),
        "block.preact_act.first": ("{act}", "preact_{act}"),
        "block.preact_norm": ("bn{n}", "{m}_bn"),
        "block.preact_act": ("{act}", "{m}_{act}"),
        "block.anti_alias": ("aa", "aa"),
        # Res2Net's hierarchy of 3x3s in place of the bottleneck's (timm's Bottle2neck): split
        # n (from 1) through `convs.{i}` and `bns.{i}` (i = n - 1), the last pooled by `pool`
        # in a stage's first block; Keras: the n-th 3x3's `2_{n}_conv`, the addition of the
        # split before's output, `2_{n}_add`, and the splits' concatenation `2_concat`
        "block.scales": ("", "2_concat"),
        "block.scale_conv": ("convs.{i}", "2_{n}_conv"),
        "block.scale_norm": ("bns.{i}", "2_{n}_bn"),
        "block.scale_act": ("{act}", "2_{n}_{act}"),
        "block.scale_add": ("", "2_{n}_add"),
        "block.scale_pool": ("pool", "2_pool"),
        # SKNet's blocks (timm's SelectiveKernelBasic and SelectiveKernelBottleneck): each
        # convolution with its norm and activation, one module (timm's ConvNormAct: `conv1.conv`,
        # `conv1.bn`); the selective kernel in place of convolution n, `conv{n}`: path i's
        # (from 0; `{k}` = i + 1 in Keras) `paths.{i}` and the attention `attn`
        "block.unit_conv": ("conv{n}.conv", "{n}_conv"),
        "block.unit_norm": ("conv{n}.bn", "{n}_bn"),
        "block.unit_act": ("conv{n}.act", "{n}_{act}"),
        "block.selective": ("conv{n}", "{n}_select"),
        "block.selective_conv": ("conv{n}.paths.{i}.conv", "{n}_{k}_conv"),
        "block.selective_norm": ("conv{n}.paths.{i}.bn", "{n}_{k}_bn"),
        "block.selective_act": ("conv{n}.paths.{i}.act", "{n}_{k}_{act}"),
        "block.selective_reduce": ("conv{n}.attn.fc_reduce", "{n}_attn_reduce"),
        "block.selective_attn_norm": ("conv{n}.attn.bn", "{n}_attn_bn"),
        "block.selective_select": ("conv{n}.attn.fc_select", "{n}_attn_select"),
        # ResNeSt's bottleneck (timm's ResNestBottleneck): split attention in place of
        # convolution n, `conv{n}` (timm's SplitAttn: one grouped convolution for all `radix`
        # paths, `bn0`, then the attention's `fc1`, `bn1`, `fc2`), and the average pool that
        # strides before it (`avd_first`) or after it (`avd_last`)
        "block.split_attention": ("conv{n}", "{n}_splat"),
        "block.split_conv": ("conv{n}.conv", "{n}_conv"),
        "block.split_norm": ("conv{n}.bn0", "{n}_bn"),
        "block.split_act": ("conv{n}.act0", "{n}_relu"),
        "block.split_reduce": ("conv{n}.fc1", "{n}_attn_reduce"),
        "block.split_attn_norm": ("conv{n}.bn1", "{n}_attn_bn"),
        "block.split_select": ("conv{n}.fc2", "{n}_attn_select"),
        # ResNeXt's aggregated transformations as paths (Xie et al., Fig. 3a): path i's (from
        # 0; `{k}` = i + 1 in Keras) 1x1, 3x3 and 1x1 `paths.{i}.conv{n}`, their sum `paths`
        "block.paths": ("paths", "paths"),
        "block.path_conv": ("paths.{i}.conv{n}", "paths_{k}_{n}_conv"),
        "block.path_norm": ("paths.{i}.bn{n}", "paths_{k}_{n}_bn"),
        "block.path_act": ("paths.{i}.act{n}", "paths_{k}_{n}_{act}"),
        "block.avd_first": ("avd_first", "avd_pool"),
        "block.avd_last": ("avd_last", "avd_pool"),
        "block.add": ("", "add"),
        "block.preact_add": ("", "out"),
        "block.out_act": ("{act}", "out"),
        # channel attention at the end of the branch, whatever its kind timm's `se`
        "attention.se": ("se", "se"),
        "attention.se.reduce": ("se.fc1", "se_reduce"),
        "attention.se.expand": ("se.fc2", "se_expand"),
        "attention.eca": ("se", "eca"),
        "attention.eca.conv": ("se.conv", "eca_conv"),
        # global context: its map's convolution, then the MLP `mlp_add` or `mlp_scale` (`{fuse}`)
        "attention.gc": ("se", "gc"),
        "attention.gc.attend": ("se.conv_attn", "gc_attend"),
        "attention.gc.fc1": ("se.mlp_{fuse}.fc1", "gc_fc1"),
        "attention.gc.norm": ("se.mlp_{fuse}.norm", "gc_norm"),
        "attention.gc.fc2": ("se.mlp_{fuse}.fc2", "gc_fc2"),
        # bilinear attention (timm's BatNonLocalAttn): `conv1` and `conv2` around the transform
        # `ba` (its `conv1` to the groups, `conv_p` and `conv_q`, `conv2`), each ConvNormAct
        "attention.bat": ("se", "bat"),
        "attention.bat.reduce": ("se.conv1.conv", "bat_reduce_conv"),
        "attention.bat.reduce_norm": ("se.conv1.bn", "bat_reduce_bn"),
        "attention.bat.to_groups": ("se.ba.conv1.conv", "bat_groups_conv"),
        "attention.bat.groups_norm": ("se.ba.conv1.bn", "bat_groups_bn"),
        "attention.bat.rows": ("se.ba.conv_p", "bat_rows_conv"),
        "attention.bat.columns": ("se.ba.conv_q", "bat_columns_conv"),
        "attention.bat.mix": ("se.ba.conv2.conv", "bat_mix_conv"),
        "attention.bat.mix_norm": ("se.ba.conv2.bn", "bat_mix_bn"),
        "attention.bat.expand": ("se.conv2.conv", "bat_expand_conv"),
        "attention.bat.expand_norm": ("se.conv2.bn", "bat_expand_bn"),
        # a shortcut's layers: torchvision's `downsample` Sequential; a pre-activation block's
        # (no norm after its projection)
        "shortcut": ("downsample.{i}", "0_{part}"),
        "shortcut.preact": ("downsample.{i}", "0_{part}"),
        # the head: a pre-activation net's final norm, the pool, dropout, the classifier
        "head.norm": ("norm", "post_bn"),
        "head.act": ("{act}", "post_{act}"),
        "head.pool": ("avgpool", "avg_pool"),
        "head.dropout": ("dropout", "top_dropout"),
        # a 1x1 convolution before the pool, with its norm and activation (timm's `final_conv`;
        # keras.applications' EfficientNets' `top_conv`)
        "head.conv": ("final_conv.conv", "top_conv"),
        "head.conv_norm": ("final_conv.bn", "top_bn"),
        "head.conv_act": ("final_conv.act", "top_{act}"),
        "head.classifier": ("fc", "predictions"),
    },
)

# timm's byobnet.py (`stem.conv1.conv`, `stages.0.0.conv1_1x1.conv`, `shortcut.conv`,
# `final_conv`, `head.fc`): every convolution with its norm and activation is one ConvNormAct;
# Keras keeps keras.applications' names, as for `resnet`.
BYOBNET = Naming(
    "byobnet",
    "timm's byobnet.py (its ResNets); keras.applications' ResNet names in Keras",
    {
        **RESNET.roles,
        "stem.conv": ("stem.conv1.conv", "conv1_conv"),
        "stem.norm": ("stem.conv1.bn", "conv1_bn"),
        "stem.act": ("stem.conv1.act", "conv1_{act}"),
        "stem.deep": ("stem.conv{n}.{unit}", "conv1_{n}_{part}"),
        "stem.deep.last_norm": ("stem.conv{n}.bn", "conv1_{n}_bn"),
        "stem.deep.last_act": ("stem.conv{n}.act", "conv1_{n}_{act}"),
        "stem.plain": ("stem.conv{n}", "conv1_{n}_conv"),
        "stem.pool": ("stem.pool", "pool1_pool"),
        "stem.avg_pool": ("stem.pool", "pool1_pool"),
        "block": ("stages.{position}.{index}", "{stage}_block{number}"),
        "block.conv": ("conv{n}_{shape}.conv", "{n}_conv"),
        "block.norm": ("conv{n}_{shape}.bn", "{n}_bn"),
        "block.act": ("conv{n}_{shape}.act", "{n}_{act}"),
        "block.out_act": ("act", "out"),
        "attention.se": ("attn{place}", "se"),
        "attention.se.reduce": ("attn{place}.fc1", "se_reduce"),
        "attention.se.expand": ("attn{place}.fc2", "se_expand"),
        "attention.eca": ("attn{place}", "eca"),
        "attention.eca.conv": ("attn{place}.conv", "eca_conv"),
        "attention.gc": ("attn{place}", "gc"),
        "attention.gc.attend": ("attn{place}.conv_attn", "gc_attend"),
        "attention.gc.fc1": ("attn{place}.mlp_{fuse}.fc1", "gc_fc1"),
        "attention.gc.norm": ("attn{place}.mlp_{fuse}.norm", "gc_norm"),
        "attention.gc.fc2": ("attn{place}.mlp_{fuse}.fc2", "gc_fc2"),
        "attention.bat": ("attn{place}", "bat"),
        "attention.bat.reduce": ("attn{place}.conv1.conv", "bat_reduce_conv"),
        "attention.bat.reduce_norm": ("attn{place}.conv1.bn", "bat_reduce_bn"),
        "attention.bat.to_groups": ("attn{place}.ba.conv1.conv", "bat_groups_conv"),
        "attention.bat.groups_norm": ("attn{place}.ba.conv1.bn", "bat_groups_bn"),
        "attention.bat.rows": ("attn{place}.ba.conv_p", "bat_rows_conv"),
        "attention.bat.columns": ("attn{place}.ba.conv_q", "bat_columns_conv"),
        "attention.bat.mix": ("attn{place}.ba.conv2.conv", "bat_mix_conv"),
        "attention.bat.mix_norm": ("attn{place}.ba.conv2.bn", "bat_mix_bn"),
        "attention.bat.expand": ("attn{place}.conv2.conv", "bat_expand_conv"),
        "attention.bat.expand_norm": ("attn{place}.conv2.bn", "bat_expand_bn"),
        "shortcut": ("shortcut.{unit}", "0_{part}"),
        "head.pool": ("head.global_pool", "avg_pool"),
        "head.dropout": ("head.drop", "top_dropout"),
        "head.classifier": ("head.fc", "predictions"),
    },
    containers=("stem", "stages", "head"),
    shortcut_first=True,
)

# timm's senet.py, the layout of Cadene's pretrainedmodels (`legacy_*`): the stem in a `layer0`
# Sequential (`layer0.conv1`, `bn1`, `relu1`, and with three convolutions `conv2` ...), the
# pool `pool0`, squeeze-excitation `se_module`, the classifier `last_linear`; Keras keeps
# keras.applications' names, as for `resnet`.
SENET = Naming(
    "senet",
    "timm's senet.py (the legacy SENets); keras.applications' ResNet names in Keras",
    {
        **RESNET.roles,
        "stem.conv": ("layer0.conv1", "conv1_conv"),
        "stem.norm": ("layer0.bn1", "conv1_bn"),
        "stem.act": ("layer0.relu1", "conv1_{act}"),
        "stem.deep": ("layer0.{unit}{n}", "conv1_{n}_{part}"),
        "stem.deep.last_norm": ("layer0.bn{n}", "conv1_{n}_bn"),
        "stem.deep.last_act": ("layer0.relu{n}", "conv1_{n}_{act}"),
        "stem.pool": ("pool0", "pool1_pool"),
        "attention.se": ("se_module", "se"),
        "attention.se.reduce": ("se_module.fc1", "se_reduce"),
        "attention.se.expand": ("se_module.fc2", "se_expand"),
        "head.pool": ("global_pool", "avg_pool"),
        "head.classifier": ("last_linear", "predictions"),
    },
    containers=("layer0",),
)

# timm's regnet.py (`stem.conv`, `s1.b1.conv1.conv`, `se.fc1`, `downsample.conv`, `final_conv`,
# `head.fc`; pre-activation: `stem`, `norm1`, `conv1`, `downsample`), every convolution with
# its norm and activation one ConvNormAct; in Keras, Keras 2's RegNet names
# (`Stage_0_XBlock_0_conv_1x1_1`, `squeeze_and_excite`, `skip_bn`, `exit_relu`, `head_dense`)
# without the model's name before them; squeeze-excitation's convolutions are `_reduce` and
# `_expand` (Keras 2's `_squeeze` and `_excite`), as every squeeze-excitation's here.
REGNET = Naming(
    "regnet",
    "timm's regnet.py; Keras 2's RegNet names in Keras",
    {
        **RESNET.roles,
        "stem.conv": ("stem.conv", "stem_conv"),
        "stem.norm": ("stem.bn", "stem_bn"),
        "stem.act": ("stem.act", "stem_{act}"),
        "stem.bare": ("stem", "stem_conv"),
        "stage": ("s{number}", ""),
        "block": ("{stage}.b{number}", "Stage_{position}_{letter}Block_{index}"),
        "block.conv": ("conv{n}.conv", "{conv}"),
        "block.norm": ("conv{n}.bn", "{conv}_bn"),
        "block.act": ("conv{n}.act", "{conv}_{act}"),
        "block.preact_conv": ("conv{n}", "{conv}"),
        "block.preact_norm.first": ("norm1", "{conv}_preact_bn"),
        "block.preact_act.first": ("{act}", "{conv}_preact_{act}"),
        "block.preact_norm": ("norm{n}", "{conv}_preact_bn"),
        "block.preact_act": ("{act}", "{conv}_preact_{act}"),
        "block.add": ("", "add"),
        "block.preact_add": ("", "add"),
        "block.out_act": ("{act}", "exit_{act}"),
        "attention.se": ("se", "squeeze_and_excite"),
        "attention.se.reduce": ("se.fc1", "squeeze_and_excite_reduce"),
        "attention.se.expand": ("se.fc2", "squeeze_and_excite_expand"),
        "shortcut": ("downsample.{unit}", "skip_{part}"),
        "shortcut.preact": ("downsample{at}", "skip_{part}"),
        "head.act": ("final_conv", "final_{act}"),
        "head.conv": ("final_conv.conv", "final_conv"),
        "head.conv_norm": ("final_conv.bn", "final_bn"),
        "head.conv_act": ("final_conv.act", "final_{act}"),
        "head.pool": ("head.global_pool", "head_gap"),
        "head.dropout": ("head.drop", "head_dropout"),
        "head.classifier": ("head.fc", "head_dense"),
    },
    containers=("head",),
)

# torchvision's regnet.py (`stem.0`, `trunk_output.block1.block1-0.f.a.0`, `f.se.fc1`,
# `proj.0`, `fc`): a block's branch is its `f` (torchvision's BottleneckTransform), each
# convolution with its norm and activation an indexed Sequential (Conv2dNormActivation); in
# Keras, Keras 2's RegNet names, as for `regnet`.
TORCHVISION_REGNET = Naming(
    "torchvision_regnet",
    "torchvision's regnet.py; Keras 2's RegNet names in Keras",
    {
        **REGNET.roles,
        "stem.conv": ("stem.0", "stem_conv"),
        "stem.norm": ("stem.1", "stem_bn"),
        "stem.act": ("stem.2", "stem_{act}"),
        "stem.bare": ("stem", "stem_conv"),
        "stage": ("block{number}", ""),
        "block": ("trunk_output.{stage}.{stage}-{index}", "Stage_{position}_{letter}Block_{index}"),
        "block.conv": ("f.{step}.0", "{conv}"),
        "block.norm": ("f.{step}.1", "{conv}_bn"),
        "block.act": ("f.{step}.2", "{conv}_{act}"),
        "block.out_act": ("activation", "exit_{act}"),
        "attention.se": ("f.se", "squeeze_and_excite"),
        "attention.se.reduce": ("f.se.fc1", "squeeze_and_excite_reduce"),
        "attention.se.expand": ("f.se.fc2", "squeeze_and_excite_expand"),
        "shortcut": ("proj.{i}", "skip_{part}"),
        "shortcut.preact": ("proj.{i}", "skip_{part}"),
        "head.pool": ("avgpool", "head_gap"),
        "head.dropout": ("dropout", "head_dropout"),
        "head.classifier": ("fc", "head_dense"),
    },
    containers=("trunk_output",),
    shortcut_first=True,
    block_containers=("f",),
)

# timm's resnetv2.py (`stem.conv`, `stem.conv1` .. `stem.norm2` for deep stems, `stem.pool`,
# `stages.0.blocks.0.norm1`, `conv1`, `downsample.conv`, the final `norm`, `head.fc`): the
# stem, the stages (each a module holding its `blocks`) and the head are containers, a block
# registers its shortcut first; Keras keeps keras.applications' V2 names.
RESNETV2 = Naming(
    "resnetv2",
    "timm's resnetv2.py (its pre-activation ResNets and BiT); keras.applications' names in Keras",
    {
        **RESNET.roles,
        "stem.conv": ("stem.conv", "conv1_conv"),
        "stem.bare": ("stem.conv", "conv1_conv"),
        "stem.norm": ("stem.norm", "conv1_bn"),
        "stem.act": ("stem.act", "conv1_{act}"),
        "stem.deep": ("stem.{layer}{n}", "conv1_{n}_{part}"),
        "stem.deep.last_norm": ("stem.norm{n}", "conv1_{n}_bn"),
        "stem.deep.last_act": ("stem.act{n}", "conv1_{n}_{act}"),
        "stem.pool": ("stem.pool", "pool1_pool"),
        "stem.avg_pool": ("stem.pool", "pool1_pool"),
        "stage": ("stage{number}", ""),
        "block": ("stages.{position}.blocks.{index}", "{stage}_block{number}"),
        "block.preact_norm.first": ("norm1", "preact_bn"),
        "block.preact_norm": ("norm{n}", "{m}_bn"),
        "block.preact_conv": ("conv{n}", "{n}_conv"),
        "block.conv": ("conv{n}", "{n}_conv"),
        "block.norm": ("norm{n}", "{n}_bn"),
        "shortcut": ("downsample.{unit}", "0_{part}"),
        "shortcut.preact": ("downsample.{unit}", "0_{part}"),
        "head.norm": ("norm", "post_bn"),
        "head.act": ("{act}", "post_{act}"),
        "head.pool": ("head.global_pool", "avg_pool"),
        "head.dropout": ("head.drop", "top_dropout"),
        "head.classifier": ("head.fc", "predictions"),
    },
    containers=("stem", "stages", "head"),
    shortcut_first=True,
)

NAMINGS = {
    naming.name: naming for naming in (RESNET, BYOBNET, SENET, REGNET, TORCHVISION_REGNET, RESNETV2)
}
