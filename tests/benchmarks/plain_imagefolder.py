"""The hand-written baseline for the image-folder benchmark: what one would type with
torchvision to train the same LeNet on a folder of class folders, every image, EPOCHS epochs
(`python plain_imagefolder.py ROOT SIZE EPOCHS`). ImageFolder + ToTensor + Normalize,
DataLoader(batch_size=64, shuffle=True, num_workers=2, persistent_workers=True), Adam.
Prints one JSON line: the time of each epoch and the whole script.

`... ROOT SIZE EPOCHS preloaded`: every image decoded into one tensor first (not timed as an
epoch), then the same steps from shuffled slices of it: the epoch's compute alone, the floor
that no data pipeline can go under (what bounds ratio (b))."""

import json
import sys
import time

t0 = time.perf_counter()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from dlx.models.cnn import LeNet  # noqa: E402  (the same network dlx trains)

root, size, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
preloaded = sys.argv[4:] == ["preloaded"]
tf = transforms.Compose(
    [
        transforms.Resize(size),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    ]
)
ds = datasets.ImageFolder(root, transform=tf)
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, persistent_workers=True)
torch.manual_seed(0)
model = LeNet((3, size, size), len(ds.classes))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
if preloaded:
    batches = list(DataLoader(ds, batch_size=256, num_workers=2))
    xs = torch.cat([b[0] for b in batches])
    ys = torch.cat([b[1] for b in batches])
    g = torch.Generator().manual_seed(0)

    def epoch_batches():
        order = torch.randperm(len(ys), generator=g)
        for i in range(0, len(ys), 64):
            idx = order[i : i + 64]
            yield xs[idx], ys[idx]
else:

    def epoch_batches():
        return loader


epoch_s = []
for _ in range(epochs):
    t = time.perf_counter()
    for x, y in epoch_batches():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    epoch_s.append(time.perf_counter() - t)
print(json.dumps({"images": len(ds), "epoch_s": epoch_s, "script_s": time.perf_counter() - t0}))
