"""Engine argument lists: vLLM's OpenAI server and llama.cpp's llama-server."""

from __future__ import annotations


def vllm_args(
    *,
    model: str,
    served: str,
    tp: int,
    max_len: int,
    dtype: str,
    gpu_util: float | None,
    concurrency: int,
    host: str,
    port: int,
    quantization: str | None,
    device: str | None,
) -> list[str]:
    args = [
        "--model", model,
        "--served-model-name", served,
        "--tensor-parallel-size", str(tp),
        "--max-model-len", str(max_len),
        "--dtype", dtype,
        "--max-num-seqs", str(concurrency),
        "--host", host,
        "--port", str(port),
    ]  # fmt: skip
    if gpu_util is not None:
        args += ["--gpu-memory-utilization", f"{gpu_util:.2f}"]
    if quantization:
        args += ["--quantization", quantization]
    if device:
        args += ["--device", device]
    return args


def llama_cpp_args(
    gguf: str, host: str, port: int, parallel: int, ctx_size: int, threads: int, alias: str
) -> list[str]:
    return [
        "-m", gguf,
        "--host", host,
        "--port", str(port),
        "--parallel", str(parallel),
        "--ctx-size", str(ctx_size),
        "--threads", str(threads),
        "--alias", alias,
        "--metrics",
        "--jinja",
    ]  # fmt: skip
