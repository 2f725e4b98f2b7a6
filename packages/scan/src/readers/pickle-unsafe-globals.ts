/**
 * Globals whose import in a pickle means code runs on load. A pickle can only
 * call what it imports, so flagging the import flags the attack; we list
 * modules and builtins that reach a shell, the file system, the network or an
 * evaluator. (Safe-listing instead would flag every custom class of every
 * model; this list errs towards fewer, louder findings.)
 */
const UNSAFE_MODULES = new Set([
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'shutil',
  'socket',
  'pty',
  'runpy',
  'webbrowser',
  'commands',
  'importlib',
  'ctypes',
  'multiprocessing',
  'code',
  'codeop',
  'pdb',
  'bdb',
  'asyncio',
  'marshal',
  'pickle',
  '_pickle',
  'dill',
  'urllib',
  'requests',
  'httplib',
  'http',
  'ftplib',
  'smtplib',
  'telnetlib',
  'tempfile',
  'pathlib',
  'glob',
  'signal',
  'platform',
]);

const UNSAFE_BUILTINS = new Set([
  'eval',
  'exec',
  'execfile',
  'compile',
  'open',
  'file',
  '__import__',
  'getattr',
  'setattr',
  'delattr',
  'globals',
  'locals',
  'vars',
  'input',
  'breakpoint',
  'apply',
  'reload',
]);

const UNSAFE_OPERATOR = new Set(['attrgetter', 'methodcaller', 'itemgetter']);

/** True when importing `module.name` from a pickle lets it run code or touch the system. */
export function isUnsafeGlobal(module: string, name: string): boolean {
  const top = module.split('.')[0] ?? module;
  if (UNSAFE_MODULES.has(top)) return true;
  if (module === 'builtins' || module === '__builtin__' || module === '__builtins__') return UNSAFE_BUILTINS.has(name);
  if (module === 'operator' || module === '_operator') return UNSAFE_OPERATOR.has(name);
  return false;
}
