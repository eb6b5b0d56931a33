"""The hand-written baseline for the predict benchmark: what one would type to classify a folder
of images with a trained dlx run's checkpoint, torchvision transforms and a DataLoader
(`python plain_predict.py RUN_DIR FOLDER`): the run's LeNet, its mean/std (from model.json;
without it one re-reads the training folder), Resize + CenterCrop + ToTensor + Normalize,
DataLoader(batch_size=256, num_workers=2), softmax. Prints one JSON line."""

import json
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms  # noqa: E402

from dlx.models.cnn import LeNet  # noqa: E402  (the network the run trained)

run, folder = Path(sys.argv[1]), Path(sys.argv[2])
card = json.loads((run / "model.json").read_text())
pre, size = card["preprocess"], card["preprocess"]["size"]
tf = transforms.Compose(
    [
        transforms.Resize(size),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(pre["mean"], pre["std"]),
    ]
)


class Files(Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            return tf(img.convert("RGB"))


paths = sorted(str(p) for p in folder.rglob("*.png"))
model = LeNet(tuple(card["input_shape"]), len(card["classes"]))
state = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
model.load_state_dict(state["model"])
model.eval()
rows = []
with torch.no_grad():
    for x in DataLoader(Files(paths), batch_size=256, num_workers=2):
        p = torch.softmax(model(x), 1)
        prob, idx = p.max(1)
        pairs = zip(idx.tolist(), prob.tolist(), strict=True)
        rows += [(card["classes"][i], float(q)) for i, q in pairs]
print(json.dumps({"images": len(rows), "script_s": time.perf_counter() - t0}))
