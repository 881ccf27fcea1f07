"""Architectures skbandit never saw, written like their libraries write them.

Tiny versions of a torchvision ResNet (BasicBlocks, downsample shortcuts), a
MobileNetV2 (inverted residuals, depthwise convolutions), a timm ViT block
(fused ``qkv``), an ``nn.TransformerEncoder`` classifier over token ids, a
residual MLP with LayerNorm and, when ``transformers`` imports, a tiny
``BertForSequenceClassification``. Random weights; each builder returns
``(model, X, y)`` with a small batch. ``tests/test_any_model.py`` prunes them
and ``benchmarks/any_model.py`` times them.
"""

import torch
import torch.nn.functional as F
from torch import nn

N_CLASSES = 3


class BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock``: two 3x3 convs and a shortcut."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout (stem, stages of BasicBlocks, pooled fc)."""

    def __init__(self, widths=(8, 16), blocks=2, n_classes=N_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        stages, inplanes = [], widths[0]
        for i, planes in enumerate(widths):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(inplanes, planes, 2 if i and not b else 1))
                inplanes = planes
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.avgpool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3, project 1x1 (+ skip)."""

    def __init__(self, inp, oup, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2's layout: stem, inverted residuals, 1x1 head, classifier."""

    def __init__(self, n_classes=N_CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(3, 8, 3, 2, 1, bias=False),
                nn.BatchNorm2d(8),
                nn.ReLU6(inplace=True),
            ),
            InvertedResidual(8, 8, 1, 2),
            InvertedResidual(8, 12, 2, 2),
            InvertedResidual(12, 12, 1, 2),
            nn.Sequential(
                nn.Conv2d(12, 24, 1, bias=False),
                nn.BatchNorm2d(24),
                nn.ReLU6(inplace=True),
            ),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(24, n_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class Attention(nn.Module):
    """timm's ``Attention``: fused ``qkv``, ``num_heads``, ``proj``."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class Mlp(nn.Module):
    """timm's ``Mlp``: ``fc1``, GELU, ``fc2``."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """timm's pre-norm ViT ``Block``."""

    def __init__(self, dim, num_heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """timm's ViT layout: conv patch embedding, cls token, blocks, head."""

    def __init__(self, dim=16, depth=2, num_heads=4, patch=4, n_classes=N_CLASSES):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (8 // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(
            *[Block(dim, num_heads, 2 * dim) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.head(self.norm(x)[:, 0])


class TokenClassifier(nn.Module):
    """An ``nn.TransformerEncoder`` over token ids, mean pooled."""

    def __init__(self, vocab=20, dim=16, num_heads=4, n_classes=N_CLASSES):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, 32, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)).mean(1))


class ResidualMLP(nn.Module):
    """Not a Sequential: an input layer, pre-norm residual MLP blocks, a head."""

    def __init__(self, n_in=6, dim=12, hidden=16, n_classes=N_CLASSES):
        super().__init__()
        self.inp = nn.Linear(n_in, dim)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ups = nn.ModuleList([nn.Linear(dim, hidden) for _ in range(2)])
        self.downs = nn.ModuleList([nn.Linear(hidden, dim) for _ in range(2)])
        self.head = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x):
        h = self.inp(x)
        for norm, up, down in zip(self.norms, self.ups, self.downs):
            h = h + down(torch.relu(up(norm(h))))
        return self.head(h)


def _labels(n):
    return torch.randint(0, N_CLASSES, (n,))


def resnet(n=8):
    """A two-stage ResNet on 3x8x8 images."""
    return ResNet(), torch.randn(n, 3, 8, 8), _labels(n)


def mobilenet_v2(n=8):
    """A MobileNetV2 on 3x8x8 images."""
    return MobileNetV2(), torch.randn(n, 3, 8, 8), _labels(n)


def vit(n=8):
    """A two-block ViT on 3x8x8 images (4 patches and a cls token)."""
    return VisionTransformer(), torch.randn(n, 3, 8, 8), _labels(n)


def transformer_encoder(n=8):
    """An ``nn.TransformerEncoder`` classifier over 6 token ids per sample."""
    return TokenClassifier(), torch.randint(0, 20, (n, 6)), _labels(n)


def residual_mlp(n=8):
    """A residual MLP with LayerNorm on 6 features."""
    return ResidualMLP(), torch.randn(n, 6), _labels(n)


def bert(n=8):
    """A tiny ``BertForSequenceClassification`` on ``input_ids`` and
    ``attention_mask`` (requires ``transformers``)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=N_CLASSES,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    ids = torch.randint(0, 30, (n, 6))
    mask = torch.ones_like(ids)
    mask[: n // 2, -2:] = 0  # padded samples
    X = {"input_ids": ids, "attention_mask": mask}
    return BertForSequenceClassification(config), X, _labels(n)


ARCHITECTURES = {
    "resnet": resnet,
    "mobilenet_v2": mobilenet_v2,
    "vit": vit,
    "transformer_encoder": transformer_encoder,
    "residual_mlp": residual_mlp,
    "bert": bert,
}


def assert_report_equals_masked(model, pruned, groups, report, X, atol=1e-10, rtol=0):
    """``pruned`` computes what ``model`` does with the units ``report``
    removed masked (each group's mask in ``model``'s dtype)."""
    from skbandit.pruning import masked

    dtype = next(model.parameters()).dtype
    masks = {}
    for group, layer in zip(groups, report.layers, strict=True):
        keep = torch.ones(group.size, dtype=dtype)
        keep[torch.as_tensor(layer.removed)] = 0
        masks[group] = keep
    with torch.no_grad(), masked(model, masks):
        expected = model(X)
    with torch.no_grad():
        torch.testing.assert_close(pruned(X), expected, atol=atol, rtol=rtol)
