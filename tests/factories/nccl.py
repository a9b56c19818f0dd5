"""nccl-tests output for tests: the sample run, and the sample with its figures scaled."""

from pathlib import Path

SAMPLE = (
    Path(__file__).resolve().parents[1] / "perfmodel" / "data" / "nccl_all_reduce_perf_2x8_h100.txt"
)


def scaled_sample(size: int = 1, time: float = 1.0) -> str:
    """The sample with every size and out-of-place time multiplied (out-of-bounds cases)."""
    lines = []
    for line in SAMPLE.read_text().splitlines():
        tokens = line.split()
        if tokens[:1] and tokens[0].isdigit():
            tokens[0] = str(int(tokens[0]) * size)
            tokens[5] = f"{float(tokens[5]) * time:g}"
            line = " ".join(tokens)
        lines.append(line)
    return "\n".join(lines) + "\n"
