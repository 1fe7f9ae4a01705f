/* Starting a grove-shim from the agent (the addon). */
#include "shim_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

static int
high_fd (int fd)
{
  /* Above 4 so the child's dup2 onto 3 and 4 never is a no-op on a CLOEXEC fd. */
  int high = fcntl (fd, F_DUPFD_CLOEXEC, 10);
  close (fd);
  return high;
}

int
grove_shim_spawn (const char *shim_path, const char *id, const char *config, size_t config_len,
                  struct grove_shim_report *out, grove_error_t *err)
{
  cleanup_close int cfg_r = -1;
  cleanup_close int cfg_w = -1;
  cleanup_close int st_r = -1;
  cleanup_close int st_w = -1;
  int fds[2];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  pid_t pid;
  int rc, status;
  char *const argv[] = { (char *) "grove-shim", (char *) id, NULL };
  size_t got = 0;

  memset (out, 0, sizeof (*out));
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return grove_error_set (err, errno, "pipe2");
  cfg_r = high_fd (fds[0]);
  cfg_w = high_fd (fds[1]);
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return grove_error_set (err, errno, "pipe2");
  st_r = high_fd (fds[0]);
  st_w = high_fd (fds[1]);
  if (cfg_r < 0 || cfg_w < 0 || st_r < 0 || st_w < 0)
    return grove_error_set (err, errno, "dup pipe");

  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, cfg_r, 3);
  posix_spawn_file_actions_adddup2 (&fa, st_w, 4);
  posix_spawnattr_init (&attr);
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &all);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  rc = posix_spawn (&pid, shim_path, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&attr);
  if (rc != 0)
    return grove_error_set (err, rc, "spawn %s", shim_path);
  grove_closep (&cfg_r);
  grove_closep (&st_w);

  rc = grove_write_all (cfg_w, config, config_len);
  grove_closep (&cfg_w);
  /* The first shim process exits once it has forked the one that stays. */
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (rc < 0)
    return grove_error_set (err, EPIPE, "shim %s exited before reading its config", shim_path);

  while (got < sizeof (*out))
    {
      ssize_t n = read (st_r, (char *) out + got, sizeof (*out) - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += (size_t) n;
    }
  if (got != sizeof (*out))
    return grove_error_set (err, EPIPE, "grove-shim for %s died before reporting its start", id);
  out->msg[sizeof (out->msg) - 1] = '\0';
  if (out->errnum != 0 || out->pid <= 0)
    {
      /* The shim's message already ends in strerror. */
      grove_error_set (err, 0, "%s", out->msg);
      err->errnum = out->errnum;
      return -1;
    }
  return 0;
}
