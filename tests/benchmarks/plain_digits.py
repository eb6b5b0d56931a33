"""The hand-written baseline for the start-up and memory benchmarks: what a user would type
to train the same LeNet on scikit-learn's digits for EPOCHS epochs (default 1). Prints one
JSON line with the time of each part (`python plain_digits.py [EPOCHS]`)."""

import json
import sys
import time

t0 = time.perf_counter()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

t_torch = time.perf_counter()
from sklearn.datasets import load_digits  # noqa: E402

digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
x = (x - x.mean()) / x.std()
y = torch.tensor(digits.target)
x, y = x[:1257], y[:1257]  # dlx's default training split: 70% of 1,797
t_data = time.perf_counter()

from dlx.models.cnn import LeNet  # noqa: E402  (the same network dlx trains)

torch.manual_seed(0)
model = LeNet((1, 8, 8), 10)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
t_setup = time.perf_counter()
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        idx = perm[i : i + 64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
t_end = time.perf_counter()
print(
    json.dumps(
        {
            "import_torch_s": t_torch - t0,
            "data_s": t_data - t_torch,
            "setup_s": t_setup - t_data,
            "train_s": t_end - t_setup,
        }
    )
)
