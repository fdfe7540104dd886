/** The Dict's limits; the client checks them too, so most bad input never leaves the caller. */
export const DICT_LIMITS = {
  /** Encoded key size (LMDB keys are at most 1978 bytes; this leaves room for the dict id and index prefix). */
  keyBytes: 1024,
  /** Encoded value size, as in the reference. */
  valueBytes: 100 * 1024 * 1024,
  /** Entries per `update`, as in the reference. */
  updateEntries: 10_000,
  /** `len()` counts at most this many, as in the reference. */
  lenCap: 100_000,
  /** Operations per batched request. */
  opsPerRequest: 1_000,
  /** Entries per scan page, and the page's rough byte budget. */
  scanPage: 10_000,
  scanPageBytes: 4 * 1024 * 1024,
} as const;
