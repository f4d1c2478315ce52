//! FRI parameters as a proof carries them, the named presets provers use, and the
//! conjectured security a verifier computes from them.

use p3_fri::FriParameters;
use serde::{Deserialize, Serialize};

/// The most conjectured bits any parameters are credited with: about the size of the
/// challenge field (the degree-4 extension of a 31-bit field, ~124 bits).
pub const MAX_SECURITY_BITS: u32 = 124;

/// Named FRI parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FriPreset {
    /// About 100 bits of conjectured security (the default): blowup 4, 42 queries,
    /// 16 bits of query grinding. See `docs/proof-format.md`.
    #[default]
    Standard,
    /// Exactly Plonky3's `FriParameters::new_benchmark`: blowup 2, 100 queries, 16 bits
    /// of query grinding. Used to compare figures with Plonky3's own.
    Benchmark,
}

impl FriPreset {
    pub const ALL: [FriPreset; 2] = [Self::Standard, Self::Benchmark];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Benchmark => "benchmark",
        }
    }

    pub const fn params(self) -> FriParams {
        match self {
            Self::Standard => FriParams {
                log_blowup: 2,
                log_final_poly_len: 0,
                max_log_arity: 1,
                num_queries: 42,
                batch_proof_of_work_bits: 0,
                commit_proof_of_work_bits: 0,
                query_proof_of_work_bits: 16,
            },
            Self::Benchmark => FriParams {
                log_blowup: 1,
                log_final_poly_len: 0,
                max_log_arity: 1,
                num_queries: 100,
                batch_proof_of_work_bits: 0,
                commit_proof_of_work_bits: 0,
                query_proof_of_work_bits: 16,
            },
        }
    }
}

impl core::str::FromStr for FriPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown FRI preset {s:?} (expected standard or benchmark)"))
    }
}

/// FRI parameters as they travel in a proof artifact (every number explicit, so a
/// verifier needs no preset table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FriParams {
    pub log_blowup: u8,
    pub log_final_poly_len: u8,
    pub max_log_arity: u8,
    pub num_queries: u16,
    pub batch_proof_of_work_bits: u8,
    pub commit_proof_of_work_bits: u8,
    pub query_proof_of_work_bits: u8,
}

impl FriParams {
    /// Conjectured security in bits: Plonky3's `FriParameters::conjectured_soundness_bits`
    /// (the ethSTARK conjecture: `log_blowup * num_queries + query_proof_of_work_bits`),
    /// capped at [`MAX_SECURITY_BITS`], what the degree-4 extension challenge field
    /// allows. What a verifier compares with its floor ([`crate::Verifier`]).
    pub fn conjectured_security_bits(&self) -> u32 {
        let bits = self.to_plonky3(()).conjectured_soundness_bits();
        (bits as u32).min(MAX_SECURITY_BITS)
    }

    /// Checks that the parameters are well formed (the ranges a verifier can run). Says
    /// nothing of security: that is the verifier's floor ([`crate::Verifier`]).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.log_blowup) {
            return Err(format!("log_blowup {} outside 1..=4", self.log_blowup));
        }
        if self.num_queries == 0 || self.num_queries > 1000 {
            return Err(format!("num_queries {} outside 1..=1000", self.num_queries));
        }
        if self.max_log_arity == 0 || self.max_log_arity > 4 {
            return Err(format!(
                "max_log_arity {} outside 1..=4",
                self.max_log_arity
            ));
        }
        if self.log_final_poly_len > 8 {
            return Err(format!(
                "log_final_poly_len {} above 8",
                self.log_final_poly_len
            ));
        }
        if [
            self.batch_proof_of_work_bits,
            self.commit_proof_of_work_bits,
            self.query_proof_of_work_bits,
        ]
        .iter()
        .any(|&b| b > 30)
        {
            return Err("proof-of-work bits above 30".into());
        }
        Ok(())
    }

    pub fn to_plonky3<M>(&self, mmcs: M) -> FriParameters<M> {
        FriParameters {
            log_blowup: self.log_blowup as usize,
            log_final_poly_len: self.log_final_poly_len as usize,
            max_log_arity: self.max_log_arity as usize,
            num_queries: self.num_queries as usize,
            batch_proof_of_work_bits: self.batch_proof_of_work_bits as usize,
            commit_proof_of_work_bits: self.commit_proof_of_work_bits as usize,
            query_proof_of_work_bits: self.query_proof_of_work_bits as usize,
            mmcs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_preset_equals_plonky3_new_benchmark() {
        let ours = FriPreset::Benchmark.params().to_plonky3(());
        let theirs = FriParameters::new_benchmark(());
        assert_eq!(ours.log_blowup, theirs.log_blowup);
        assert_eq!(ours.log_final_poly_len, theirs.log_final_poly_len);
        assert_eq!(ours.max_log_arity, theirs.max_log_arity);
        assert_eq!(ours.num_queries, theirs.num_queries);
        assert_eq!(
            ours.batch_proof_of_work_bits,
            theirs.batch_proof_of_work_bits
        );
        assert_eq!(
            ours.commit_proof_of_work_bits,
            theirs.commit_proof_of_work_bits
        );
        assert_eq!(
            ours.query_proof_of_work_bits,
            theirs.query_proof_of_work_bits
        );
    }

    #[test]
    fn standard_preset_reaches_100_conjectured_bits() {
        assert_eq!(
            FriPreset::Standard.params().conjectured_security_bits(),
            100
        );
        assert!(FriPreset::Benchmark.params().conjectured_security_bits() >= 100);
        for p in FriPreset::ALL {
            p.params().validate().unwrap();
        }
    }
}
