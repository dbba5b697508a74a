# Merging a subject LoRA with a style LoRA trained by the same method / variant.
# Merge folders are named {method}-{merger}[_w{λ1}_{λ2}] (dcobench.merge.lora.merge_id).
from dcobench.merge.lora import parse_merge_id


def merge_part(w, i):
    """(method, merger, weights)[i] of the merge wildcard."""
    return parse_merge_id(w.merge)[i]


def merge_options():
    m = config["merge"]
    return {k: m[k] for k in ("rank", "density", "ziplora") if k in m} | {"seed": config["seed"]}


rule merge:
    input:
        subject=lambda w: f"{model_dir('subject', w.subject, merge_part(w, 0))}/pytorch_lora_weights.safetensors",
        style=lambda w: f"{model_dir('style', w.style, merge_part(w, 0))}/pytorch_lora_weights.safetensors",
        subject_concept=lambda w: concept_yaml(w.subject),
        style_concept=lambda w: concept_yaml(w.style),
    output:
        f"{R}/merges/{{subject}}__{{style}}/{{merge}}/lora/pytorch_lora_weights.safetensors",
    log:
        f"{R}/logs/merge/{{subject}}__{{style}}/{{merge}}.log",
    benchmark:
        f"{R}/benchmarks/merge/{{subject}}__{{style}}/{{merge}}.tsv"
    params:
        subject=lambda w, input: input.subject.rsplit("/", 1)[0],
        style=lambda w, input: input.style.rsplit("/", 1)[0],
        subject_concept=lambda w: concept_dir(w.subject),
        style_concept=lambda w: concept_dir(w.style),
        merger=lambda w: merge_part(w, 1),
        weights=lambda w: ",".join(str(x) for x in merge_part(w, 2)),
        options=opts(merge_options()),
        base=config["models"]["base"],
        out=lambda w, output: output[0].rsplit("/", 1)[0],
    resources:
        gpu=1,  # GPUs per job (SLURM: sbatch --gpus; ignored by local --cores runs)
        mem_mb=16000,
        runtime=60,
    shell:
        "exec {PY} -m dcobench merge --subject-model {params.subject} --style-model {params.style} "
        "--subject {params.subject_concept} --style {params.style_concept} "
        "--merger {params.merger} --weights {params.weights} --base-model {params.base} "
        "--options {params.options} --out {params.out} > {log} 2>&1"
