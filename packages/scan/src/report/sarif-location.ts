import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The uriBaseId of files under the scan root (SARIF §3.4.4; what GitHub code scanning and the Multitool expect). */
export const SRCROOT = '%SRCROOT%';

/** A SARIF `artifactLocation`: a relative reference with its base, or an absolute `file:` URI. */
export interface SarifArtifactLocation {
  readonly uri: string;
  readonly uriBaseId?: string;
}

/** The absolute `file:` URI of a directory, ending in `/` as SARIF requires of a base (§3.14.14). */
export function directoryUri(directory: string): string {
  const href = pathToFileURL(directory).href;
  return href.endsWith('/') ? href : `${href}/`;
}

/** Lone UTF-16 surrogates cannot be percent-encoded as UTF-8; a file name decoded by Node never has them, but be safe. */
const wellFormed = (s: string): string => s.replace(/\p{Surrogate}/gu, '\uFFFD');

/**
 * Where a reported file is, as SARIF wants it (§3.4.3, §3.10): a file under
 * the scan root is a relative reference resolved against `%SRCROOT%`, each
 * path segment percent-encoded (so a space, `#`, `?`, `%`, `:` or a
 * non-ASCII letter cannot change what the reference means); any other file
 * is an absolute `file:` URI. A relative reference never begins with `/`
 * (Multitool error SARIF1004) and never stands without its base.
 *
 * `file` is the scanner's display path: `/`-separated, relative to the root
 * when inside it, absolute otherwise.
 */
export function artifactLocation(file: string): SarifArtifactLocation {
  if (isAbsolute(file)) return { uri: pathToFileURL(file).href };
  const uri = wellFormed(file)
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
  return { uri, uriBaseId: SRCROOT };
}
