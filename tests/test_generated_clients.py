"""The committed inter-service clients are exactly what `make generate` produces from the specs."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = [
    ("openapi/product.yaml", "order_service/generated_product_client"),
    ("openapi/order.yaml", "product_service/generated_order_client"),
]


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {left}: {n}" for n in comparison.left_only]
    found += [f"only in fresh output: {n}" for n in comparison.right_only]
    found += [f"differs: {n}" for n in comparison.diff_files]
    for name in comparison.common_dirs:
        found += _differences(left / name, right / name)
    return found


@pytest.mark.parametrize(("spec", "package"), CLIENTS)
def test_generated_client_matches_its_spec(spec, package, tmp_path):
    bin_dir = Path(sys.executable).parent
    output = tmp_path / "client"
    subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--meta",
            "none",
            "--path",
            spec,
            "--output-path",
            str(output),
            "--config",
            "openapi/client-generator.yaml",
            "--fail-on-warning",
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        check=True,
        capture_output=True,
    )
    assert _differences(ROOT / package, output) == [], "run `make generate` and commit"
