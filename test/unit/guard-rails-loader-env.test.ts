// loader-env.ts is the deny list that makes `exec.env` safe to fill in ("refused even if listed"). Each name
// below makes a common program load or run code named by the caller, yet is accepted in policies.exec.env and then
// passed to the guest. (Only a hole once an operator lists the name; the config check is what should stop them.)
import { describe, expect, it } from 'vitest';
import { isLoaderVariable } from '../../src/config/loader-env.js';
import { policiesConfigSchema } from '../../src/config/identities.js';

const CODE_LOADING: Record<string, string> = {
  ZDOTDIR: 'zsh sources $ZDOTDIR/.zshenv on every start, scripts included',
  HOME: 'git, ssh, bash -l, python (site.USER_SITE) ... read config or code from $HOME (git core.fsmonitor/core.pager run commands)',
  XDG_CONFIG_HOME: 'git reads $XDG_CONFIG_HOME/git/config (core.fsmonitor runs a command)',
  GIT_CONFIG_PARAMETERS: "git -c in the environment: core.sshCommand, core.pager, alias.*='!cmd'",
  GIT_CONFIG_COUNT: 'with GIT_CONFIG_KEY_0/GIT_CONFIG_VALUE_0: any git config, as above',
  GIT_SSH_COMMAND: 'git runs it for every ssh remote',
  LESSOPEN: 'less runs it as an input preprocessor',
  SYSTEMD_EDITOR: 'systemctl edit runs it (EDITOR and VISUAL are listed, this one is not)',
  SUDO_ASKPASS: 'sudo -A runs it',
  DOTNET_STARTUP_HOOKS: '.NET (Core) loads these assemblies into any .NET program',
  COR_PROFILER_PATH: '.NET Framework loads this DLL into any .NET program (with COR_ENABLE_PROFILING=1)',
  CORECLR_PROFILER_PATH: '.NET Core: the same',
  PHPRC: 'php reads this php.ini (auto_prepend_file runs code)',
  CLASSPATH: 'java loads classes from it',
  SHELL: 'programs that run "$SHELL -c" (make, vi :!, script, expect) run this',
};

describe('loader and interpreter variables', () => {
  it('include every variable that makes a common program run caller-chosen code', () => {
    const missing = Object.keys(CODE_LOADING).filter((n) => !isLoaderVariable(n));
    expect(missing).toEqual([]);
  });

  it('cannot be listed in policies.exec.env', () => {
    const accepted = Object.keys(CODE_LOADING).filter(
      (n) => policiesConfigSchema.safeParse({ exec: { allow: ['/usr/bin/git'], env: [n] } }).success,
    );
    expect(accepted).toEqual([]);
  });
});
