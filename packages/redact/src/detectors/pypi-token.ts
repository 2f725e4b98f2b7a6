import type { Detector } from './detector.js';

/** PyPI API tokens: macaroons whose first bytes name pypi.org (or test.pypi.org). */
export const pypiToken: Detector = {
  id: 'pypi-token',
  description: 'PyPI / TestPyPI upload token (pypi-AgEIcHlwaS5vcmc…)',
  keywords: ['pypi-AgEIcHlwaS5vcmc', 'pypi-AgENdGVzdC5weXBpLm9yZw'],
  pattern: /(?<![A-Za-z0-9_-])pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000}(?![A-Za-z0-9_-])/g,
  maxLength: 1040,
  span: /[A-Za-z0-9_-]/,
};
