//! Cutting unique IDs into Wix-sized batches.

/// Most files Wix packs into one archive per call.
pub const MAX_BATCH: usize = 1000;

/// Consecutive batches of at most `size` IDs, in order. `size` must be at least 1.
pub fn batches<T>(ids: &[T], size: usize) -> std::slice::Chunks<'_, T> {
    ids.chunks(size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize) -> Vec<usize> {
        let ids: Vec<usize> = (0..n).collect();
        let chunks: Vec<&[usize]> = batches(&ids, MAX_BATCH).collect();
        let flat: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(flat, ids, "batches keep every id once, in order");
        chunks.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn batch_sizes() {
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(999), vec![999]);
        assert_eq!(sizes(1000), vec![1000]);
        assert_eq!(sizes(1001), vec![1000, 1]);
        assert_eq!(sizes(2500), vec![1000, 1000, 500]);
        let big = sizes(100_000);
        assert_eq!(big.len(), 100);
        assert!(big.iter().all(|&s| s == 1000));
    }
}
