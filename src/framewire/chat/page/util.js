// Small pure helpers: entity decoding, sizes, ids and colours. No DOM, no state.

/** Image types shown inline (and opened full size); any other upload is a download link. */
export const INLINE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'", '&#39;': "'" };

/** Undo the server's HTML escaping in one pass (so "&amp;lt;" becomes "&lt;", not "<"). */
export function decodeEntities(text) {
  return String(text).replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

/** A random id of 32 hex digits (crypto.randomUUID exists only in secure contexts). */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(size < 10240 ? 1 : 0)} KB`;
  return `${(size / (1024 * 1024)).toFixed(1)} MB`;
}

// Well-separated hues, so two names rarely get colours that look alike.
const HUES = [4, 28, 48, 95, 145, 172, 195, 215, 250, 275, 300, 330];

/** A stable hue for a name (FNV-1a hash). */
export function hueOf(name) {
  let hash = 0x811c9dc5;
  for (const char of name) hash = Math.imul(hash ^ char.codePointAt(0), 0x01000193) >>> 0;
  return HUES[hash % HUES.length];
}
