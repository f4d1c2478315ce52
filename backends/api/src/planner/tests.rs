use super::*;

/// Limits of `budget` and `max_buffer` words.
fn limits(budget: usize, max_buffer: usize) -> DeviceLimits {
    DeviceLimits {
        budget_words: budget,
        max_buffer_words: max_buffer,
    }
}

fn shape(log_h: usize, added_bits: usize, width: usize) -> LdeShape {
    LdeShape {
        log_h,
        added_bits,
        width,
    }
}

fn ranges(b: &Batches) -> Vec<Range<usize>> {
    b.ranges().collect()
}

#[test]
fn limits_from_device_keep_a_share_of_memory_and_round_down_to_words() {
    let l = DeviceLimits::from_device(Some(1_000_000), Some(4097));
    assert_eq!(l.budget_words, 900_000 / 4);
    assert_eq!(l.max_buffer_words, 1024);
    // Less than a thousand bytes: the share rounds down to nothing.
    assert_eq!(DeviceLimits::from_device(Some(999), None).budget_words, 0);
    assert_eq!(
        DeviceLimits::from_device(None, None),
        DeviceLimits::UNBOUNDED
    );
    let l = DeviceLimits::from_device(None, Some(u64::from(u32::MAX)));
    assert_eq!(l.budget_words, usize::MAX);
    assert_eq!(l.max_buffer_words, (u32::MAX / 4) as usize);
    assert_eq!(l.words(Limit::Budget), usize::MAX);
    assert_eq!(l.words(Limit::MaxBuffer), l.max_buffer_words);
}

#[test]
fn lde_memory_estimate_counts_input_output_and_tables() {
    // 2^10 rows, 4 columns, blowup 2: input 4 KiW + output 8 KiW + scale + twiddles.
    let s = shape(10, 1, 4);
    assert_eq!(s.rows(), 1024);
    assert_eq!(s.lde_rows(), 2048);
    assert_eq!(s.words_needed(4), (1024 + 2048) * 4 + 1024 + 2048);
    assert_eq!(s.words_needed(1), 2 * (1024 + 2048));
}

#[test]
fn batches_cover_every_item_once_in_order() {
    for total in 0..40 {
        for per_batch in 1..45 {
            let b = Batches::new(total, per_batch);
            let r = ranges(&b);
            assert_eq!(r.len(), b.count(), "{b:?}");
            let flat: Vec<usize> = r.iter().cloned().flatten().collect();
            assert_eq!(flat, (0..total).collect::<Vec<_>>(), "{b:?}");
            assert!(r.iter().all(|r| !r.is_empty() && r.len() <= per_batch));
            // Only the last batch may be shorter.
            assert!(r.iter().rev().skip(1).all(|r| r.len() == b.per_batch));
            assert_eq!(b.is_whole(), b.count() <= 1, "{b:?}");
        }
    }
}

#[test]
fn lde_that_fits_is_one_batch() {
    let s = shape(10, 1, 24);
    let b = lde(&DeviceLimits::UNBOUNDED, &s).unwrap();
    assert!(b.is_whole());
    assert_eq!(ranges(&b), vec![0..24]);
}

#[test]
fn lde_budget_exactly_fitting_every_column_is_one_batch() {
    let s = shape(10, 1, 24);
    let per_column = s.words_needed(1);
    let exact = lde(&limits(per_column * 24, usize::MAX), &s).unwrap();
    assert!(exact.is_whole(), "{exact:?}");
    // One word short: one column fewer per batch, two batches.
    let short = lde(&limits(per_column * 24 - 1, usize::MAX), &s).unwrap();
    assert_eq!(ranges(&short), vec![0..23, 23..24]);
}

#[test]
fn lde_splits_columns_against_the_budget() {
    // The OpenCL device test's shape: 64 KiB capped, 90 % of it planned.
    let s = shape(10, 1, 24);
    let l = DeviceLimits::from_device(Some(64 << 10), Some(64 << 10));
    let b = lde(&l, &s).unwrap();
    // 14625 words of budget, 6144 a column: 2 columns a batch.
    assert_eq!(b.per_batch, 2);
    assert_eq!(b.count(), 12);
}

#[test]
fn lde_splits_columns_against_the_largest_buffer() {
    // The wgpu test's shape: 2^10 x 33, +1 bit, 32 KiB bindings: 4 columns of 2048
    // words of extension a batch, 9 batches, the last of 1 column.
    let s = shape(10, 1, 33);
    let b = lde(&limits(usize::MAX, (32 << 10) / 4), &s).unwrap();
    assert_eq!(b.per_batch, 4);
    assert_eq!(b.count(), 9);
    assert_eq!(ranges(&b).last(), Some(&(32..33)));
    // The tighter of the two limits wins.
    let per_column = s.words_needed(1);
    let b = lde(&limits(3 * per_column, (32 << 10) / 4), &s).unwrap();
    assert_eq!(b.per_batch, 3);
}

#[test]
fn one_column_over_the_budget_cannot_be_split() {
    let s = shape(12, 1, 1);
    let per_column = s.words_needed(1);
    let e = lde(&limits(per_column - 1, usize::MAX), &s).unwrap_err();
    assert_eq!(
        e,
        PlanError {
            what: "one column of the LDE",
            limit: Limit::Budget,
            needed_words: per_column,
            available_words: per_column - 1,
        }
    );
    // Exactly one column's worth is enough.
    assert_eq!(
        lde(&limits(per_column, usize::MAX), &s).unwrap().per_batch,
        1
    );
}

#[test]
fn one_column_over_the_largest_buffer_cannot_be_split() {
    // The wgpu refusal: 2^11 rows of extension (8 KiB) under a 4 KiB buffer.
    let s = shape(10, 1, 1);
    let e = lde(&limits(usize::MAX, 1024), &s).unwrap_err();
    assert_eq!(
        (e.limit, e.needed_words, e.available_words),
        (Limit::MaxBuffer, 2048, 1024)
    );
    assert!(matches!(
        e.out_of_memory("wgpu:0"),
        BackendError::OutOfMemory { needed_bytes: 8192, available_bytes: 4096, ref device } if device == "wgpu:0"
    ));
    assert!(e.to_string().contains("largest buffer"), "{e}");
    // The budget is checked first: both exceeded reports the budget.
    let e = lde(&limits(10, 1024), &s).unwrap_err();
    assert_eq!(e.limit, Limit::Budget);
}

#[test]
fn lde_of_zero_columns_is_an_empty_plan() {
    let b = lde(&limits(0, 0), &shape(10, 1, 0)).unwrap();
    assert_eq!(b.count(), 0);
    assert!(b.is_whole());
}

#[test]
fn leaf_hashing_with_resident_digests_keeps_them_out_of_the_budget() {
    // 7 rows (not a power of two: leaf hashing takes any count) of 10 words.
    let job = LeafHashing {
        rows: 7,
        len: 10,
        state_words: 0,
        digests: Digests::Resident {
            words: 7 * DIGEST_WORDS,
        },
    };
    let b = leaf_hashing(&limits(7 * DIGEST_WORDS + 30, usize::MAX), &job).unwrap();
    assert_eq!(ranges(&b), vec![0..3, 3..6, 6..7]);
    // Room for every message at once: one batch.
    let b = leaf_hashing(&limits(7 * DIGEST_WORDS + 70, usize::MAX), &job).unwrap();
    assert!(b.is_whole());
    // The digests fill the budget exactly: no room for a message.
    let e = leaf_hashing(&limits(7 * DIGEST_WORDS, usize::MAX), &job).unwrap_err();
    assert_eq!(
        (e.what, e.limit, e.needed_words, e.available_words),
        ("one message", Limit::Budget, 10, 0)
    );
    // The digests alone exceed the budget, or the largest buffer.
    let e = leaf_hashing(&limits(7 * DIGEST_WORDS - 1, usize::MAX), &job).unwrap_err();
    assert_eq!(
        (e.what, e.limit, e.needed_words),
        ("the digest buffer", Limit::Budget, 56)
    );
    let e = leaf_hashing(&limits(usize::MAX, 55), &job).unwrap_err();
    assert_eq!(
        (e.what, e.limit, e.needed_words),
        ("the digest buffer", Limit::MaxBuffer, 56)
    );
}

#[test]
fn leaf_hashing_with_per_batch_digests_counts_them_in_each_batch() {
    let job = LeafHashing {
        rows: 100,
        len: 40,
        state_words: 0,
        digests: Digests::PerBatch,
    };
    // 48 words a row: 10 rows in 480 words.
    let b = leaf_hashing(&limits(480, usize::MAX), &job).unwrap();
    assert_eq!(b.per_batch, 10);
    // The largest buffer bounds the messages of a batch.
    let b = leaf_hashing(&limits(usize::MAX, 200), &job).unwrap();
    assert_eq!(b.per_batch, 5);
    // Short messages: the scratch digests are the widest buffer of a batch.
    let short = LeafHashing { len: 2, ..job };
    let b = leaf_hashing(&limits(usize::MAX, 80), &short).unwrap();
    assert_eq!(b.per_batch, 10);
    let e = leaf_hashing(&limits(47, usize::MAX), &job).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::Budget, 48));
    let e = leaf_hashing(&limits(usize::MAX, 39), &job).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::MaxBuffer, 40));
}

#[test]
fn leaf_hashing_counts_sponge_states() {
    // wgpu: 24 words of state a message; 12-word messages are bound by their states.
    let job = LeafHashing {
        rows: 1 << 9,
        len: 12,
        state_words: 24,
        digests: Digests::Resident { words: 0 },
    };
    let b = leaf_hashing(&limits(usize::MAX, 240), &job).unwrap();
    assert_eq!(b.per_batch, 10);
    let b = leaf_hashing(&limits(360, usize::MAX), &job).unwrap();
    assert_eq!(b.per_batch, 10);
    let e = leaf_hashing(&limits(usize::MAX, 23), &job).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::MaxBuffer, 24));
}

#[test]
fn leaf_hashing_of_no_rows_is_an_empty_plan() {
    let job = LeafHashing {
        rows: 0,
        len: 5,
        state_words: 0,
        digests: Digests::PerBatch,
    };
    assert_eq!(leaf_hashing(&limits(0, 0), &job).unwrap().count(), 0);
}

#[test]
fn pairs_are_batched_by_budget_and_largest_buffer() {
    let per_pair = 3 * DIGEST_WORDS;
    assert!(
        pair_batches(&DeviceLimits::UNBOUNDED, 1000)
            .unwrap()
            .is_whole()
    );
    assert!(
        pair_batches(&limits(1000 * per_pair, usize::MAX), 1000)
            .unwrap()
            .is_whole()
    );
    let b = pair_batches(&limits(10 * per_pair + 5, usize::MAX), 25).unwrap();
    assert_eq!(ranges(&b), vec![0..10, 10..20, 20..25]);
    assert_eq!(
        pair_batches(&limits(usize::MAX, 4 * per_pair), 25)
            .unwrap()
            .per_batch,
        4
    );
    let e = pair_batches(&limits(per_pair - 1, usize::MAX), 3).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::Budget, per_pair));
    let e = pair_batches(&limits(usize::MAX, per_pair - 1), 3).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::MaxBuffer, per_pair));
    assert_eq!(
        pair_batches(&limits(per_pair, per_pair), 0)
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn tree_words_count_every_layer() {
    assert_eq!(tree_words(1), DIGEST_WORDS);
    assert_eq!(tree_words(8), 15 * DIGEST_WORDS);
    assert_eq!(tree_words(0), 0);
}

#[test]
fn a_tree_that_fits_is_resident_with_row_batches() {
    let rows = 1 << 9;
    let layers = tree_words(rows);
    match tree(&limits(layers + 24 * 100, usize::MAX), rows, 24, 0).unwrap() {
        TreePlan::Resident { leaf_batches } => {
            assert_eq!(leaf_batches.per_batch, 100);
            assert_eq!(leaf_batches.count(), 6);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tree(&DeviceLimits::UNBOUNDED, rows, 24, 24).unwrap(),
        TreePlan::Resident {
            leaf_batches: Batches::new(rows, rows)
        }
    );
}

#[test]
fn layers_over_the_largest_buffer_are_built_by_layers() {
    // The OpenCL device test: 2^13 leaves, 2^14 - 1 digests, under a 64 KiB buffer.
    let l = DeviceLimits::from_device(Some(64 << 10), Some(64 << 10));
    let plan = tree(&l, 1 << 13, 40, 0).unwrap();
    let TreePlan::ByLayers(f) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (f.what, f.limit, f.needed_words, f.available_words),
        (
            "the digest layers",
            Limit::MaxBuffer,
            tree_words(1 << 13),
            16 << 10
        )
    );
    assert!(f.to_string().contains("layer by layer"), "{f}");
}

#[test]
fn layers_filling_the_budget_leave_no_room_and_are_built_by_layers() {
    let rows = 64;
    let layers = tree_words(rows);
    // Exactly the layers: not one message beside them.
    let plan = tree(&limits(layers, usize::MAX), rows, 10, 0).unwrap();
    let TreePlan::ByLayers(f) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!((f.limit, f.needed_words), (Limit::Budget, layers + 10));
    // One message beside them is enough.
    let plan = tree(&limits(layers + 10, usize::MAX), rows, 10, 0).unwrap();
    assert_eq!(
        plan,
        TreePlan::Resident {
            leaf_batches: Batches::new(rows, 1)
        }
    );
}

#[test]
fn a_message_wider_than_the_largest_buffer_cannot_be_hashed() {
    let e = tree(&limits(usize::MAX, 1 << 10), 4, 2000, 0).unwrap_err();
    assert_eq!((e.limit, e.needed_words), (Limit::MaxBuffer, 2000));
}

#[test]
fn fused_lde_and_tree_needs_everything_at_once() {
    let s = shape(10, 1, 16);
    let n = s.lde_rows();
    let total = s.words_needed(16) + tree_words(n) + n * 24;
    assert_eq!(
        lde_and_tree(&DeviceLimits::UNBOUNDED, &s, 24),
        FusedPlan::Fused
    );
    assert_eq!(
        lde_and_tree(&limits(total, usize::MAX), &s, 24),
        FusedPlan::Fused
    );
    let FusedPlan::Separate(f) = lde_and_tree(&limits(total - 1, usize::MAX), &s, 24) else {
        panic!("one word short still fused")
    };
    assert_eq!(
        (f.limit, f.needed_words, f.available_words),
        (Limit::Budget, total, total - 1)
    );
    assert!(f.instead.contains("column batches"));
}

#[test]
fn fused_lde_and_tree_needs_each_buffer_within_the_largest() {
    let s = shape(10, 1, 16);
    let n = s.lde_rows();
    let (extension, layers, states) = (n * 16, tree_words(n), n * 24);
    let reason = |max: usize, state_words: usize| match lde_and_tree(
        &limits(usize::MAX, max),
        &s,
        state_words,
    ) {
        FusedPlan::Separate(f) => Some((f.what, f.needed_words)),
        FusedPlan::Fused => None,
    };
    assert_eq!(reason(extension - 1, 0), Some(("the extension", extension)));
    assert_eq!(reason(extension, 0), None);
    // Narrow matrices: the layers are the largest buffer.
    let narrow = shape(10, 1, 2);
    let FusedPlan::Separate(f) = lde_and_tree(&limits(usize::MAX, layers - 1), &narrow, 0) else {
        panic!("layers over the largest buffer still fused")
    };
    assert_eq!((f.what, f.limit), ("the digest layers", Limit::MaxBuffer));
    assert_eq!(reason(states - 1, 24), Some(("the sponge states", states)));
    assert_eq!(reason(states, 24), None);
}

#[test]
fn column_batches_are_gathered_run_and_reassembled() {
    // 3 rows x 5 columns; the "kernel" doubles the rows and negates the second copy.
    let values: Vec<i64> = (0..15).collect();
    let run = |sub: &[i64], w: usize| -> Result<Vec<i64>, ()> {
        assert_eq!(sub.len() % w, 0);
        let mut out = sub.to_vec();
        out.extend(sub.iter().map(|v| -v));
        Ok(out)
    };
    let whole = run_column_batches(&values, &Batches::new(5, 5), 6, run).unwrap();
    for per_batch in 1..5 {
        let mut calls = Vec::new();
        let got = run_column_batches(&values, &Batches::new(5, per_batch), 6, |sub, w| {
            calls.push(w);
            run(sub, w)
        })
        .unwrap();
        assert_eq!(got, whole, "{per_batch} columns a batch");
        assert_eq!(calls.len(), 5usize.div_ceil(per_batch));
    }
    // The first error stops the batches.
    let mut calls = 0;
    let e = run_column_batches(&values, &Batches::new(5, 2), 6, |_, _| {
        calls += 1;
        Err::<Vec<i64>, _>("device lost")
    });
    assert_eq!((e, calls), (Err("device lost"), 1));
}

/// A log sink for the tests.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fallbacks_and_splits_are_logged_with_the_device_and_the_reason() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let TreePlan::ByLayers(fallback) = tree(&limits(usize::MAX, 100), 64, 10, 0).unwrap() else {
        panic!("64 leaves' layers fit 100 words")
    };
    let split = lde(&limits(usize::MAX, 4096), &shape(10, 1, 8)).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        fallback.log("opencl:0:0", "merkle_tree");
        split.log("wgpu:0", "coset_lde_batch", "columns");
        // One whole batch is not a split.
        Batches::new(4, 4).log("wgpu:0", "hash_rows", "rows");
    });
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for want in [
        "INFO",
        "opencl:0:0",
        "merkle_tree",
        "layer by layer",
        "the digest layers",
        "needed_words=1016",
        "available_words=100",
    ] {
        assert!(lines[0].contains(want), "{want:?} missing: {}", lines[0]);
    }
    for want in [
        "DEBUG",
        "wgpu:0",
        "coset_lde_batch",
        "columns split",
        "per_batch=2",
        "batches=4",
    ] {
        assert!(lines[1].contains(want), "{want:?} missing: {}", lines[1]);
    }
}

#[test]
fn whole_buffers_fit_the_budget_in_all_and_the_largest_buffer_each() {
    let l = limits(100, 40);
    assert_eq!(whole(&l, "a matrix", 100, 40), Ok(()));
    let e = whole(&l, "a matrix", 101, 40).unwrap_err();
    assert_eq!(
        (e.limit, e.needed_words, e.available_words),
        (Limit::Budget, 101, 100)
    );
    let e = whole(&l, "a matrix", 80, 41).unwrap_err();
    assert_eq!(
        (e.limit, e.needed_words, e.available_words),
        (Limit::MaxBuffer, 41, 40)
    );
    assert_eq!(
        e.to_string(),
        "a matrix needs 41 words, more than the largest buffer (40 words)"
    );
    assert_eq!(
        whole(&DeviceLimits::UNBOUNDED, "x", usize::MAX, usize::MAX),
        Ok(())
    );
}
