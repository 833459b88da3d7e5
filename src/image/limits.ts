/**
 * Image limits, in a module without sharp so that command-line definitions can name the defaults cheaply.
 */

/** Default pixel limit (width × height as declared by the header): 8192 × 8192 ≈ 67 Mpx. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;
