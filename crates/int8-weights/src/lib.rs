//! Decoding of int8 weights with one f32 scale per group of a row, straight into the layout the
//! matrix products want.
//!
//! Why a crate of its own: these loops touch each of the model's 110 million weights once at
//! every start, and insight-bot's own crate is built without optimisation in debug builds (for
//! fast rebuilds), where they would take seconds; a dependency can be optimised alone
//! (`[profile.dev.package.int8-weights]` in the main `Cargo.toml`). Doing it here rather than with
//! candle's tensor operations also replaces five full passes over the weights (widen, fix the
//! sign, scale, transpose, concatenate) with one, which took start-up from 1.6 s to well under
//! one second.

/// `q` holds int8 values (as bytes) of a `rows` x `cols` matrix W in row-major order, and
/// `scales` one f32 per `group` consecutive values of a row (`rows` x `cols / group`).
/// Writes W^T into `out`, a row-major matrix of `cols` rows and `out_cols` columns, at column
/// offset `col_offset`: `out[k * out_cols + col_offset + r] = q[r, k] * scale[r, k / group]`.
///
/// # Panics
/// When the sizes do not fit together (the caller checks shapes before).
pub fn dequantize_transposed(
    q: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group: usize,
    out: &mut [f32],
    out_cols: usize,
    col_offset: usize,
) {
    assert!(group > 0 && cols % group == 0);
    assert_eq!(q.len(), rows * cols);
    assert_eq!(scales.len(), rows * (cols / group));
    assert!(col_offset + rows <= out_cols && out.len() == cols * out_cols);
    let groups = cols / group;
    // Tiles of 32 x 32 keep both the reads and the transposed writes in cache.
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for k0 in (0..cols).step_by(TILE) {
            let k1 = (k0 + TILE).min(cols);
            for r in r0..r1 {
                let row = &q[r * cols..(r + 1) * cols];
                let row_scales = &scales[r * groups..(r + 1) * groups];
                for k in k0..k1 {
                    out[k * out_cols + col_offset + r] =
                        f32::from(row[k] as i8) * row_scales[k / group];
                }
            }
        }
    }
}

/// The same without the transpose: W itself, row-major, into `out` (`rows * cols` values), for
/// tables whose rows are looked up (token and position embeddings).
pub fn dequantize(
    q: &[u8],
    scales: &[f32],
    rows: usize,
    cols: usize,
    group: usize,
    out: &mut [f32],
) {
    assert!(group > 0 && cols % group == 0);
    assert_eq!(q.len(), rows * cols);
    assert_eq!(scales.len(), rows * (cols / group));
    assert_eq!(out.len(), rows * cols);
    for ((values, weights), &scale) in out
        .chunks_exact_mut(group)
        .zip(q.chunks_exact(group))
        .zip(scales)
    {
        for (v, &w) in values.iter_mut().zip(weights) {
            *v = f32::from(w as i8) * scale;
        }
    }
}

// Tested from the main crate (src/embedding/weights.rs), whose `cargo test` runs; this crate is
// a path dependency, not a workspace member, so tests here would never run.
