/* abi-probe: system calls through the three ABIs of x86_64 (native, i386
 * by int 0x80, x32 by the x32 bit) that a seccomp filter decides on, each
 * in a child so a killed call is seen: one line per argument, "name=ok",
 * "name=EPERM", ..., "name=killed". Built static and not PIE by
 * test/src/runtime-oci-abi-mounts.test.ts (a 32-bit call's pointers must be
 * below 4 GiB) and copied into a busybox rootfs. x86_64 only. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long
i386_call (long nr, long a, long b, long c)
{
  long r;
  __asm__ volatile ("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return r < 0 && r > -4096 ? (errno = (int) -r, -1) : r;
}

/* In the data segment of a static, non-PIE program: below 4 GiB, so a
 * 32-bit call can point at them. */
static unsigned int inet_args[3] = { 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0 };
static unsigned int unix_args[3] = { 1 /* AF_UNIX */, 1, 0 };
static char dir64[] = "/tmp/abi-64", dir32[] = "/tmp/abi-32", dirx32[] = "/tmp/abi-x32";

static long
call (const char *name)
{
  if (strcmp (name, "mkdir") == 0)
    return syscall (SYS_mkdir, dir64, 0700);
  if (strcmp (name, "i386_mkdir") == 0)
    return i386_call (39, (long) dir32, 0700, 0);
  if (strcmp (name, "x32_mkdir") == 0)
    return syscall (0x40000000 | SYS_mkdir, dirx32, 0700);
  if (strcmp (name, "i386_getpid") == 0)
    return i386_call (20, 0, 0, 0);
  if (strcmp (name, "x32_getpid") == 0)
    return syscall (0x40000000 | SYS_getpid);
  if (strcmp (name, "socket_inet") == 0)
    return syscall (SYS_socket, 2, 1, 0);
  if (strcmp (name, "i386_socket_inet") == 0)
    return i386_call (359, 2, 1, 0);
  if (strcmp (name, "i386_socket_unix") == 0)
    return i386_call (359, 1, 1, 0);
  if (strcmp (name, "i386_socketcall_inet") == 0)
    return i386_call (102, 1 /* SYS_SOCKET */, (long) inet_args, 0);
  if (strcmp (name, "i386_socketcall_unix") == 0)
    return i386_call (102, 1, (long) unix_args, 0);
  errno = EINVAL;
  return -2;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      int status = 0, fds[2];
      pid_t pid;
      if (pipe (fds) < 0)
        return 1;
      pid = fork ();
      if (pid == 0)
        {
          long r = call (argv[i]);
          int e = r < 0 ? errno : 0;
          if (write (fds[1], &e, sizeof (e)) != sizeof (e))
            _exit (1);
          _exit (0);
        }
      close (fds[1]);
      {
        int e = -1;
        ssize_t n = read (fds[0], &e, sizeof (e));
        waitpid (pid, &status, 0);
        close (fds[0]);
        if (n != sizeof (e))
          printf ("%s=killed\n", argv[i]);
        else if (e == 0)
          printf ("%s=ok\n", argv[i]);
        else
          printf ("%s=%s\n", argv[i], e == EPERM ? "EPERM" : e == ENOSYS ? "ENOSYS" : e == EACCES ? "EACCES" : strerror (e));
      }
    }
  return 0;
}
