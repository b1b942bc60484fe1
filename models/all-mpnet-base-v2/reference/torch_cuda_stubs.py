"""Let PyPI's CUDA build of torch import on a machine without the multi-GB nvidia-* wheels, for
the CPU-only cross-checks (check_st.py, check_tok_st.py). Not needed for anything else.

`pip install --no-deps torch` gives libtorch_*.so files that need libcudart.so.13, libcublas.so.13,
libcudnn.so.9, libnccl.so.2, ... at load time. This writes one tiny stub library per missing soname
into OUT_DIR: every CUDA symbol torch references is a function returning an error code (100,
"no device"; error-string getters return "cuda stub"), with the symbol versions torch asks for.
The CPU code path never calls them (torch.cuda.is_available() is False). Then:

    python3 torch_cuda_stubs.py /tmp/cuda-stubs            # needs gcc and nm
    CUDA_VISIBLE_DEVICES= LD_LIBRARY_PATH=/tmp/cuda-stubs MPNET_ST_DIR=... python3 check_st.py

Used here with torch 2.15.0 (cp311 manylinux_2_28 wheel, 539 MB).
"""
import collections
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cuda-stubs")
out.mkdir(parents=True, exist_ok=True)
torch_dir = Path(importlib.util.find_spec("torch").origin).parent
sos = sorted((torch_dir / "lib").glob("*.so")) + sorted(torch_dir.glob("_C*.so"))

needed, undef = set(), set()
for so in sos:
    dyn = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True).stdout
    needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn))
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(so)], capture_output=True, text=True).stdout
    undef |= {line.split()[-1] for line in nm.splitlines() if line.strip()}
present = {p.name for p in (torch_dir / "lib").iterdir()}
nvidia = sorted(n for n in needed if n not in present and re.match(
    r"lib(cu|nccl|nvrtc|nvshmem|cudnn)", n))
print("stubbing:", " ".join(nvidia))

per = collections.defaultdict(lambda: collections.defaultdict(set))  # soname -> version -> names
loose = "libnccl.so.2" if "libnccl.so.2" in nvidia else nvidia[0]
for s in undef:
    if "@" in s:
        name, ver = s.split("@", 1)
        lib = next((n for n in nvidia if n.startswith("libnvshmem")), None) if ver == "NVSHMEM" else (
            ver if ver in nvidia else None)
        if lib:
            per[lib][ver].add(name)
    elif re.match(r"^(nccl|cusparseLt|cuFile|nvshmem|cudnn|cuda|cublas|nvrtc|cu[A-Z]|cupti|nvtx)", s, re.I):
        per[loose][None].add(s)

for lib in nvidia:
    c = ['static const char msg[] = "cuda stub";']
    versions = []
    for ver, names in sorted(per[lib].items(), key=lambda kv: str(kv[0])):
        for n in sorted(names):
            if re.search(r"(ErrorString|ErrorName|StatusString|StatusName|GetString)$", n):
                c.append(f"const char* {n}(void) {{ return msg; }}")
            elif n == "cudaGetDeviceCount":
                c.append(f"int {n}(int* c) {{ if (c) *c = 0; return 100; }}")
            else:
                c.append(f"long {n}(void) {{ return 100; }}")
        if ver:
            versions.append(f'{ver} {{ global: {"; ".join(sorted(names))}; }};')
    (out / f"{lib}.c").write_text("\n".join(c) + "\n")
    (out / f"{lib}.map").write_text("\n".join(versions) + "\n" if versions else "STUB { global: *; };\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out / lib), str(out / f"{lib}.c"),
                    f"-Wl,-soname,{lib}", f"-Wl,--version-script={out / lib}.map"], check=True)
print("written to", out)
