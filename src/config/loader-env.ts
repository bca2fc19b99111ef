// Environment variables that make an allowed program run other code: the dynamic loader's (glibc's
// unsecure-envvars list, which it drops itself for setuid programs), macOS's, and the start-up hooks of
// shells and interpreters. Under an exec policy they are refused whatever the policy lists: allowing
// /usr/bin/id must not allow `LD_PRELOAD=/tmp/evil.so /usr/bin/id`. Compared in upper case, since Windows
// reads environment names in any case.
const PREFIXES = [
  'LD_',
  'DYLD_',
  'GCONV_',
  'GLIBC_',
  'MALLOC_',
  'BASH_FUNC_',
  'PYTHON',
  'PERL',
  'RUBY',
  'NODE_',
  'LUA_',
  'JAVA_',
  '_JAVA_',
  'JDK_',
  'GIT_',
  'DOTNET_',
  'COR_',
  'CORECLR_',
  'XDG_',
];
/** Variables that name a program to run: EDITOR, SYSTEMD_EDITOR, SUDO_ASKPASS, SSH_ASKPASS, GIT_SSH_COMMAND... */
const SUFFIXES = ['EDITOR', 'ASKPASS', '_COMMAND', 'OPEN'];
const NAMES = new Set([
  // glibc
  'GETCONF_DIR',
  'HOSTALIASES',
  'LOCALDOMAIN',
  'LOCPATH',
  'NIS_PATH',
  'NLSPATH',
  'RESOLV_HOST_CONF',
  'RES_OPTIONS',
  'TMPDIR',
  'TZDIR',
  // program lookup: an allowed program that runs a helper by name would run whatever PATH finds first
  'PATH',
  'PATHEXT',
  'COMSPEC',
  // shells
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  // others that load code or configuration from a path
  'GIO_EXTRA_MODULES',
  'GTK_MODULES',
  'OPENSSL_CONF',
  'OPENSSL_ENGINES',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'VISUAL',
  'PAGER',
  // where programs read their start-up files from
  'HOME',
  'ZDOTDIR',
  'SHELL',
  'INPUTRC',
  'PHPRC',
  'CLASSPATH',
  'LESSOPEN',
  'LESSCLOSE',
  'MANPAGER',
  'BROWSER',
]);

export function isLoaderVariable(name: string): boolean {
  const n = name.toUpperCase();
  return NAMES.has(n) || PREFIXES.some((p) => n.startsWith(p)) || SUFFIXES.some((x) => n.endsWith(x));
}
