/* The default seccomp filter, with the semantics of Docker's default profile
 * for an unprivileged container: what it denies (EPERM) without
 * CAP_SYS_ADMIN & co. is denied here; clone3 gets ENOSYS (so libc falls back
 * to clone, whose flags can be checked); clone with a namespace flag is
 * denied; the x32 ABI and foreign architectures are refused.
 *
 * Program: check arch -> load nr -> x32? -> deny list -> clone flags -> allow. */
#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#if defined(__x86_64__)

#define X32_SYSCALL_BIT 0x40000000

static const int denied[] = {
  SYS_acct,          SYS_add_key,          SYS_bpf,           SYS_clock_adjtime, SYS_clock_settime,
  SYS_create_module, SYS_delete_module,    SYS_finit_module,  SYS_get_kernel_syms, SYS_init_module,
  SYS_ioperm,        SYS_iopl,             SYS_kcmp,          SYS_kexec_file_load, SYS_kexec_load,
  SYS_keyctl,        SYS_lookup_dcookie,   SYS_mount,         SYS_move_pages,    SYS_mbind,
  SYS_set_mempolicy, SYS_name_to_handle_at, SYS_nfsservctl,   SYS_open_by_handle_at, SYS_perf_event_open,
  SYS_pivot_root,    SYS_query_module,     SYS_quotactl,      SYS_reboot,        SYS_request_key,
  SYS_setns,         SYS_settimeofday,     SYS_swapoff,       SYS_swapon,        SYS_sysfs,
  SYS__sysctl,       SYS_umount2,          SYS_unshare,       SYS_uselib,        SYS_userfaultfd,
  SYS_ustat,         SYS_syslog,           SYS_fanotify_init, SYS_vhangup,
#ifdef SYS_fsopen
  SYS_fsopen,        SYS_fsconfig,         SYS_fsmount,       SYS_fspick,        SYS_move_mount,
  SYS_open_tree,
#endif
#ifdef SYS_mount_setattr
  SYS_mount_setattr,
#endif
#ifdef SYS_quotactl_fd
  SYS_quotactl_fd,
#endif
};
#define N_DENIED (sizeof (denied) / sizeof (denied[0]))

#define NS_FLAGS                                                                                                       \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP          \
   | CLONE_NEWTIME)

#define RET(v) BPF_STMT (BPF_RET | BPF_K, (v))

int
grove_seccomp_default (struct sock_fprog *prog)
{
  /* Layout: [0..3] arch and nr, [4] x32 check, N_DENIED jeqs, clone3, clone,
   * allow, clone-args block, then the shared returns. */
  size_t n = 0, cap = N_DENIED + 32;
  struct sock_filter *f = calloc (cap, sizeof (*f));
  size_t ret_allow, ret_eperm, ret_enosys, ret_kill, clone_block;

  prog->len = 0;
  prog->filter = NULL;
  if (f == NULL)
    return -1;
  /* Indexes of the blocks after the checks (computed up front). */
  clone_block = 5 + N_DENIED + 3;
  ret_allow = clone_block + 3;
  ret_eperm = ret_allow + 1;
  ret_enosys = ret_eperm + 1;
  ret_kill = ret_enosys + 1;
#define JUMP_TO(target) ((unsigned char) ((target) - n - 1))

  f[n] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch));
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, (unsigned) (ret_kill - n - 1), 0, 0);
  n++;
  f[n] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr));
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, JUMP_TO (ret_eperm), 0);
  n++;
  for (size_t i = 0; i < N_DENIED; i++)
    {
      f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (unsigned) denied[i], JUMP_TO (ret_eperm), 0);
      n++;
    }
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, JUMP_TO (ret_enosys), 0);
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, JUMP_TO (clone_block), 0);
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, (unsigned) (ret_allow - n - 1), 0, 0);
  n++;
  /* clone_block: flags are the first argument on x86_64 (low 32 bits). */
  f[n] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0]));
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, JUMP_TO (ret_eperm), 0);
  n++;
  f[n] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, (unsigned) (ret_allow - n - 1), 0, 0);
  n++;
  f[n++] = (struct sock_filter) RET (SECCOMP_RET_ALLOW);
  f[n++] = (struct sock_filter) RET (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
  f[n++] = (struct sock_filter) RET (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
  f[n++] = (struct sock_filter) RET (SECCOMP_RET_KILL_PROCESS);
  prog->len = (unsigned short) n;
  prog->filter = f;
  return 0;
}

#else

int
grove_seccomp_default (struct sock_fprog *prog)
{
  prog->len = 0;
  prog->filter = NULL;
  return -1;
}

#endif
