"""Training: LoRA (+ learned token) with the DB / DB+p.p. / DCO objectives (paper §4.1)."""
