//! `proofbox verify`: one artifact or a bundle of chained state-transition proofs,
//! checked by `proofbox-verifier` under the floor the caller sets.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use proofbox_prover::transition::digest_hex as hex;
use proofbox_verifier::{DEFAULT_MIN_SECURITY_BITS, Verified, Verifier};
use serde_json::json;

/// The verifier's policy, as `verify` and `prove` take it.
#[derive(Args, Clone, Copy)]
pub struct FloorArgs {
    /// Refuse proofs with fewer conjectured security bits than this
    /// (log_blowup * num_queries + query proof-of-work bits, the ethSTARK conjecture
    /// as Plonky3 states it; at most 124).
    #[arg(long, default_value_t = DEFAULT_MIN_SECURITY_BITS, value_name = "BITS")]
    pub min_security_bits: u32,
}

impl FloorArgs {
    pub fn verifier(&self) -> Result<Verifier> {
        Ok(Verifier::with_min_security_bits(self.min_security_bits)?)
    }
}

/// The JSON fields of a verified proof.
pub fn verified_json(v: &Verified) -> serde_json::Value {
    let mut out = json!({
        "valid": true,
        "circuit": v.circuit,
        "field": v.field,
        "log_rows": v.log_rows,
        "proofs": v.proofs,
        "conjectured_security_bits": v.security_bits,
        "min_security_bits": v.min_security_bits,
    });
    if let Some(t) = &v.transition {
        out["transition"] = json!({
            "pre_root": hex(&t.pre_root),
            "post_root": hex(&t.post_root),
            "diff_commitment": hex(&t.diff_commitment),
            "block_number": t.block_number,
        });
    }
    out
}

/// `proofbox verify FILE`: exit 0 if valid, 1 if not (with the reason).
pub fn verify(path: &Path, floor: FloorArgs, json: bool) -> Result<ExitCode> {
    let verifier = floor.verifier()?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let start = Instant::now();
    match verifier.verify_any_bytes(&bytes) {
        Ok(v) => {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if json {
                let mut out = verified_json(&v);
                out["verify_ms"] = json!(ms);
                println!("{out}");
            } else {
                let what = if v.proofs > 1 {
                    format!("a bundle of {} chained proofs of", v.proofs)
                } else {
                    String::new()
                };
                println!(
                    "valid: {what}{}{} 2^{} rows over {} ({} bits conjectured, floor {}), verified in {:.1} ms",
                    if what.is_empty() { "" } else { " " },
                    v.circuit,
                    v.log_rows,
                    v.field,
                    v.security_bits,
                    v.min_security_bits,
                    ms
                );
                if let Some(t) = &v.transition {
                    println!(
                        "  block {}: pre-state root {}, post-state root {}, diff commitment {}",
                        t.block_number,
                        hex(&t.pre_root),
                        hex(&t.post_root),
                        hex(&t.diff_commitment)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!("{}", json!({"valid": false, "error": e.to_string()}));
                Ok(ExitCode::FAILURE)
            } else {
                Err(anyhow!("{}: invalid proof: {e}", path.display()))
            }
        }
    }
}
