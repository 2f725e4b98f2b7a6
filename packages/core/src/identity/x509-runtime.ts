// @peculiar/x509 resolves its internals through tsyringe, which needs the
// Reflect metadata API at load time. Importing the polyfill here, before the
// library, keeps that requirement in one place: every identity module imports
// X.509 types from this file, never from '@peculiar/x509' directly.
// (The polyfill only adds Reflect.getMetadata & co.; it replaces nothing.)
import 'reflect-metadata';

export {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate as AsnCertificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
