/**
 * The system's Python (scripts/system-deps.sh installs it), by path: "python3" on root's PATH
 * may be a pyenv shim, a bash script that costs ~0.6 CPU-s before Python starts (the POSIX
 * mount tests start Python hundreds of times).
 */
export const PYTHON = "/usr/bin/python3";
