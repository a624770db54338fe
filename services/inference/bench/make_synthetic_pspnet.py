#!/usr/bin/python3
"""Stand-ins for models/facade-ads/2 and models/facade-ads-full/2 when they are not built yet:
the same PSPNet (ResNet-18 cut at depth 3, 256 decoder channels, no decoder batch-norm) from
experiments/pspnet.py with random weights (seed 0), exported at 288x192 (2.3 GFLOPs) and
1152x768 (36.9 GFLOPs). Same cost as the real networks, meaningless masks: benchmarks only.

    /usr/bin/python3 services/inference/bench/make_synthetic_pspnet.py /tmp/inf-bench/models
"""
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
import torch  # noqa: E402
from experiments import pspnet  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else '/tmp/segserve-bench-models')
torch.manual_seed(0)
torch.set_num_threads(1)
net = pspnet.build({'encoder': 'resnet18', 'encoder_depth': 3, 'psp_out_channels': 256, 'psp_use_batchnorm': False})
net.eval()
for name, (h, w) in {'synth-ads': (192, 288), 'synth-ads-full': (768, 1152)}.items():
    d = out / name / '2'
    d.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(1, 3, h, w), str(d / 'model.onnx'), input_names=['input'], output_names=['logits'], opset_version=13, do_constant_folding=True)
    sha = hashlib.sha256((d / 'model.onnx').read_bytes()).hexdigest()
    manifest = {
        'name': name, 'version': '2', 'sha256': sha, 'description': 'synthetic PSPNet-R18-256 (random weights), benchmarks only',
        'input': {'name': 'input', 'height': h, 'width': w, 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'scale': 1 / 255},
        'output': {'name': 'logits', 'kind': 'logits'}, 'classes': ['background', 'advertising'],
    }
    (d / 'model.json').write_text(json.dumps(manifest, indent=2) + '\n')
    print(d, f'{w}x{h}', round(pspnet.count_gflops(net, h, w), 2), 'GFLOPs')
