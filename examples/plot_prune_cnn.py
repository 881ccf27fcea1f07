"""
=========================================
Prune a small CNN with the function API
=========================================

:func:`skbandit.pruning.prune` prunes any trained torch model, not only the
estimators' MLPs. Here a small convolutional network on scikit-learn's 8x8
digits,

``Conv2d → BatchNorm2d → ReLU → Conv2d → ReLU → Flatten → Linear → ReLU →
Linear``,

is trained with a plain torch loop; :func:`~skbandit.pruning.find_unit_groups`
discovers its prunable units — the output channels of the first convolution
(pruned together with the batch norm's per-channel parameters) and the
neurons of the hidden ``Linear`` layer — and a Thompson-sampling bandit
chooses which to remove.
"""

# %%
# Train the network
# -----------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skbandit.pruning import count_parameters, find_unit_groups, prune

X, y = load_digits(return_X_y=True)
X = (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)  # images, one channel
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
X_train, X_test = torch.from_numpy(X_train), torch.from_numpy(X_test)
y_train, y_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1),
    nn.BatchNorm2d(16),
    nn.ReLU(),
    nn.Conv2d(16, 16, 3, padding=1),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(16 * 8 * 8, 64),
    nn.ReLU(),
    nn.Linear(64, 10),
)


def train(net, epochs):
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(X_train)).split(64):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    return net.eval()


train(model, epochs=8)


def accuracy(net):
    with torch.no_grad():
        return (net(X_test).argmax(1) == y_test).float().mean().item()


print(
    f"trained: test accuracy {accuracy(model):.3f}, "
    f"{count_parameters(model)} parameters"
)

# %%
# The prunable units
# ------------------
# Each :class:`~skbandit.pruning.UnitGroup` names the modules that produce
# the units (the convolution and its batch norm) and the module that reads
# them. The second convolution is not a group: ``Flatten`` mixes its channels
# into the ``Linear`` layer's inputs.

for group in find_unit_groups(model):
    print(group)

# %%
# Prune
# -----
# Half of the convolution channels and half of the hidden neurons; the pulls
# are measured on the training data, and the model passed in is left
# untouched.

small, report = prune(
    model,
    X_train,
    y_train,
    policy="thompson",
    prune_ratio=0.5,
    budget=10,
    random_state=0,
)
print(small)
for layer in report.layers:
    print(
        f"group {layer.name}: {layer.units_before} -> {layer.units_after}, "
        f"removed {layer.removed.tolist()}"
    )
print(
    f"parameters {report.params_before} -> {report.params_after}, "
    f"test accuracy {accuracy(model):.3f} -> {accuracy(small):.3f} "
    f"(no fine-tuning)"
)

# %%
# The pruned copy is an ordinary, smaller ``nn.Sequential``: fine-tune it with
# the same loop.

train(small, epochs=2)
print(f"after 2 epochs of fine-tuning: test accuracy {accuracy(small):.3f}")

# %%
# Thompson sampling against the baselines
# ---------------------------------------
# Test accuracy right after removing a growing share of both groups, without
# fine-tuning, for Thompson sampling and two baselines.

ratios = [0.25, 0.5, 0.75]
methods = ["thompson", "magnitude", "random"]
results = {
    method: [
        accuracy(
            prune(
                model,
                X_train,
                y_train,
                policy=method,
                prune_ratio=r,
                budget=10,  # as above; the baselines ignore it
                random_state=0,
            )[0]
        )
        for r in ratios
    ]
    for method in methods
}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
conv = report.layers[0]
channels = np.arange(conv.units_before)
ax1.bar(
    channels,
    conv.scores,
    color=np.where(np.isin(channels, conv.removed), "tab:red", "tab:blue"),
)
ax1.set_xlabel("channel of the first convolution")
ax1.set_ylabel("posterior mean reward")
ax1.set_ylim(conv.scores.min() - 0.05, conv.scores.max() + 0.05)
ax1.set_title("Thompson estimates (red = removed)")
width = 0.8 / len(methods)
for i, method in enumerate(methods):
    ax2.bar(np.arange(len(ratios)) + i * width, results[method], width, label=method)
ax2.axhline(accuracy(model), color="k", linewidth=1, label="unpruned")
ax2.set_xticks(np.arange(len(ratios)) + 0.4 - width / 2, [str(r) for r in ratios])
ax2.set_xlabel("prune_ratio")
ax2.set_ylabel("test accuracy")
ax2.set_ylim(0, 1)
ax2.legend(fontsize="small", loc="lower left")
ax2.set_title("Accuracy after pruning (no fine-tuning)")
fig.tight_layout()
plt.show()
