/* seccomp-probe: makes system calls a seccomp filter decides on and prints one
 * line per call, "name=ok" or "name=ERRNO" (EPERM, ENOSYS, ...). Built static
 * by test/src/runtime-seccomp.test.ts and copied into a busybox rootfs; every
 * call is a raw syscall(), so libc cannot fall back or translate. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#define KCMP_FILE 0

static const char *
errname (int e)
{
  switch (e)
    {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default:
      {
        static char buf[32];
        snprintf (buf, sizeof (buf), "E%d", e);
        return buf;
      }
    }
}

static void
report (const char *name, long r)
{
  printf ("%s=%s\n", name, r < 0 ? errname (errno) : "ok");
  fflush (stdout);
}

/* A call that changes the caller (a new namespace): made in a child. */
static void
in_child (const char *name, int (*call) (void))
{
  int status = 0;
  pid_t pid = fork ();
  if (pid == 0)
    _exit (call () < 0 ? errno : 0);
  waitpid (pid, &status, 0);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    printf ("%s=ok\n", name);
  else
    printf ("%s=%s\n", name, WIFEXITED (status) ? errname (WEXITSTATUS (status)) : "killed");
  fflush (stdout);
}

static int
unshare_user (void)
{
  return (int) syscall (SYS_unshare, CLONE_NEWUSER);
}

static int
clone_newuser (void)
{
  long pid = syscall (SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0)
    _exit (0);
  if (pid < 0)
    return -1;
  waitpid ((pid_t) pid, NULL, 0);
  return 0;
}

int
main (void)
{
  struct io_uring_params params;

  memset (&params, 0, sizeof (params));
  report ("io_uring_setup", syscall (SYS_io_uring_setup, 1, &params));
  report ("io_uring_enter", syscall (SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
  report ("io_uring_register", syscall (SYS_io_uring_register, -1, 0, NULL, 0));
  report ("socket_vsock", syscall (SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM, 0));
  report ("socket_alg", syscall (SYS_socket, 38 /* AF_ALG */, SOCK_SEQPACKET, 0));
  /* The kernel reads the family as an int: the high half must not get past the filter. */
  report ("socket_alg_high_bits", syscall (SYS_socket, 0x100000026L, SOCK_SEQPACKET, 0));
  report ("socket_inet", syscall (SYS_socket, AF_INET, SOCK_STREAM, 0));
  report ("socket_unix", syscall (SYS_socket, AF_UNIX, SOCK_STREAM, 0));
  report ("personality_read_implies_exec", syscall (SYS_personality, 0x0400000));
  report ("personality_addr_no_randomize", syscall (SYS_personality, 0x0040000));
  report ("personality_linux", syscall (SYS_personality, 0));
  report ("personality_query", syscall (SYS_personality, 0xffffffffUL));
  report ("clone3", syscall (SYS_clone3, NULL, 0));
  in_child ("clone_newuser", clone_newuser);
  in_child ("unshare_user", unshare_user);
  report ("keyctl", syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
  report ("kcmp", syscall (SYS_kcmp, getpid (), getpid (), KCMP_FILE, 1, 1));
#ifdef __x86_64__
  report ("x32_getpid", syscall (0x40000000 | SYS_getpid));
#endif
  report ("fchmodat2", syscall (SYS_fchmodat2, AT_FDCWD, "/nonexistent", 0644, 0));
  return 0;
}
