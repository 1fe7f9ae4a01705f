// Shared by the API's admission policy and the agent's runtime.
/**
 * Docker's default capability set (moby/oci/caps/defaults.go): what a
 * container keeps unless it drops them (the agent's runtime/security.ts), and
 * what the baseline policy allows adding back.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "MKNOD",
  "NET_RAW",
  "SETGID",
  "SETUID",
  "SETFCAP",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "SYS_CHROOT",
  "KILL",
  "AUDIT_WRITE",
];
