/**
 * Content types by file extension, for the files a game's web client is
 * made of. A short table of our own rather than a mime database: an unknown
 * extension is served as bytes, and `nosniff` keeps a browser from guessing
 * better. Text types name their charset so that a browser never has to.
 */
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  // RFC 9239 makes text/javascript the one type for JavaScript, modules included.
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  map: 'application/json',
  webmanifest: 'application/manifest+json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  xml: 'application/xml',
  // protobufjs loads .proto schemas in the browser.
  proto: 'text/plain; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/x-icon',
  wasm: 'application/wasm',
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  otf: 'font/otf',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  webm: 'video/webm',
  pdf: 'application/pdf',
};

const BYTES = 'application/octet-stream';

/**
 * Types worth compressing: text and the structured formats built on it,
 * and wasm (its code shrinks by half or more). Images, fonts, audio and
 * video are compressed by their own formats already; gzip would spend CPU
 * to save nothing.
 */
const COMPRESSIBLE = /^(text\/|application\/(json|manifest\+json|xml|wasm)|image\/svg\+xml)/;

/** The Content-Type for a file name, by its extension (compared without case). */
export function contentTypeOf(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  if (dot < 0) return BYTES;
  return TYPES[fileName.slice(dot + 1).toLowerCase()] ?? BYTES;
}

/** Whether a response of this Content-Type is worth gzipping. */
export function isCompressible(contentType: string): boolean {
  return COMPRESSIBLE.test(contentType);
}
