# Analyses over trained models: noise distance per timestep (Fig 8c), LoRA column cosine (Fig 10).

ND = config["analysis"]["noise_distance"]
# PLAN.noise_distance: (subject, variant) pairs, one GPU job each (SDXL: ~35 min for 20 timesteps ×
# 100 noises × 2 forwards), joined by a CPU rule; PLAN.lora_cosine: (subject, style, variant)


rule noise_distance_run:
    input:
        subject_lora_of,
    output:
        L.noise_distance_run("{concept}", "{variant}"),
    log:
        L.log("analysis", "noise_distance", "{concept}", "{variant}"),
    benchmark:
        L.benchmark("analysis", "noise_distance", "{concept}", "{variant}")
    params:
        run=noise_run_of,
        options=opts(
            {
                "timesteps": ND["timesteps"],
                "noises": ND["noises"],
                "resolution": config["train"]["resolution"],
                "seed": config["seed"],
            }
        ),
        base=job_model("base"),
    shell:
        "exec {PY} -m dcobench analyze noise-distance --run {params.run} --out {output} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


# The join: every (concept, variant) part in one table (the report's input); CPU, seconds.
rule noise_distance:
    input:
        [L.noise_distance_run(s, v) for s, v in PLAN.noise_distance],
    output:
        L.noise_distance(),
    log:
        L.log("analysis", "noise_distance"),
    shell:
        "exec {PY} -m dcobench analyze join --part {input} --out {output} > {log} 2>&1"


# Per-layer cosine between subject and style LoRA columns (paper Fig 10); weights only, CPU.
rule lora_cosine:
    input:
        [
            model_dir(k, c, v, LORA)
            for s, t, v in PLAN.lora_cosine
            for k, c in (("subject", s), ("style", t))
        ],
    output:
        L.lora_cosine(),
    log:
        L.log("analysis", "lora_cosine"),
    benchmark:
        L.benchmark("analysis", "lora_cosine")
    params:
        pairs=" ".join(
            f"{v}:{model_dir('subject', s, v)}:{model_dir('style', t, v)}"
            for s, t, v in PLAN.lora_cosine
        ),
    shell:
        "exec {PY} -m dcobench analyze lora-cosine --pair {params.pairs} --out {output} > {log} 2>&1"
