/* grove-shim exec: runs a command inside a running container (`grove exec`).
 *
 * The agent spawns `grove-shim exec ID` with these descriptors:
 *   0, 1, 2  the session's stdin, stdout, stderr (without a tty they become the
 *            process's own; with a tty the helper relays 0 and 1 to the pty);
 *   3        the configuration: NUL-separated "key" "value" pairs until EOF
 *            (pid, id, cgroup_*, cwd, tty, cols, rows, caps, seccomp, uid, gid,
 *            group, rlimit, arg, env: see parse_config);
 *   4        control from the agent, one line each: "signal N", "resize COLS ROWS";
 *            EOF (the agent closed the session or died) SIGKILLs the process;
 *   5        status to the agent, one JSON line each: {"pid":N} once the command
 *            runs, then {"exitCode":N,"signal":S}; or {"error":...,"errno":N}.
 *
 * The stages (CVE-2019-5736: none of them is ever a host file a container
 * process could write through /proc/<pid>/exe):
 *   helper  re-executes itself from a sealed memfd copy of its binary (write,
 *           grow, shrink, seal and, from Linux 6.3, exec seals), stays on the
 *           host, non-dumpable; checks that the pid is the
 *           container's init (a pidfd, its /proc/<pid>/cgroup) and opens its
 *           namespaces; forks
 *   join    moves itself into the container's cgroups (every v1 hierarchy the
 *           init is in at /<parent>/<id>, or the v2 cgroup), setns()es into every namespace of
 *           the init that differs from ours (ipc, uts, net, pid, cgroup, time,
 *           mnt, then user), clones the process as the helper's child
 *           (CLONE_PARENT) and exits
 *   process is inside the container's pid namespace from its first
 *           instruction; with a tty it opens the container's /dev/ptmx (a
 *           devpts, checked), hands the master to the helper (SCM_RIGHTS),
 *           setsid()s and makes the pty its controlling terminal; it closes
 *           every descriptor beyond 0-2, chdir()s and checks the working
 *           directory is inside the root (CVE-2024-21626), applies the
 *           container's rlimits, capabilities (bounding, permitted, effective;
 *           inheritable and ambient empty), user and groups, no_new_privs and
 *           seccomp filter, and execve()s the command; PR_SET_PDEATHSIG
 *           kills it if the helper dies.
 * The helper is the process's parent, reaps it and reports its exit; the
 * session ends with the helper. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "cgroup.h"
#include "container.h"
#include "seccomp.h"
#include "shim_protocol.h"
#include "util.h"

#ifndef SYS_execveat
#define SYS_execveat 322
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO ('T', 0x41)
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define FD_CONFIG 3
#define FD_CONTROL 4
#define FD_STATUS 5

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define RELAY_BUF 16384
#define TTY_DRAIN_MS 2000

struct exec_config
{
  const char *id, *cg_mode, *cg_root, *cg_parent, *cwd;
  pid_t pid;
  int tty;
  unsigned short cols, rows;
  grove_process_config_t proc; /* caps, seccomp, uid, gid, group, rlimit, arg, env */
};

/* Messages from the join and process stages to the helper (SOCK_SEQPACKET). */
enum
{
  MSG_PID = 1,   /* pid: host pid of the process */
  MSG_TTY = 2,   /* the pty master rides along (SCM_RIGHTS) */
  MSG_ERROR = 3, /* errnum, msg: the stage failed and exits */
};

struct exec_msg
{
  int type;
  int errnum;
  int pid;
  char msg[1000];
};

/* Namespaces joined, in order; the user namespace last (joined as host root,
 * every other one is reachable first; after it we could not reach those the
 * initial user namespace owns, e.g. a CNI network namespace). */
static const struct
{
  const char *name;
  int type;
} namespaces[] = {
  { "ipc", CLONE_NEWIPC },       { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET }, { "pid", CLONE_NEWPID },
  { "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME }, { "mnt", CLONE_NEWNS }, { "user", CLONE_NEWUSER },
};
#define N_NS (sizeof (namespaces) / sizeof (namespaces[0]))

static struct exec_config cfg;

/* ---- status to the agent --------------------------------------------------- */

static void
status_write (const char *line)
{
  (void) grove_write_all (FD_STATUS, line, strlen (line));
}

static void
status_error (int errnum, const char *msg)
{
  char out[2400];
  size_t n = 0;
  n += (size_t) snprintf (out + n, sizeof (out) - n, "{\"error\":\"");
  for (const char *p = msg; *p != '\0' && n + 8 < sizeof (out) - 64; p++)
    {
      unsigned char c = (unsigned char) *p;
      if (c == '"' || c == '\\')
        {
          out[n++] = '\\';
          out[n++] = (char) c;
        }
      else if (c < 0x20)
        n += (size_t) snprintf (out + n, sizeof (out) - n, "\\u%04x", c);
      else
        out[n++] = (char) c;
    }
  snprintf (out + n, sizeof (out) - n, "\",\"errno\":%d}\n", errnum);
  status_write (out);
}

/* ---- the sealed copy (CVE-2019-5736) -------------------------------------- */

/* Returns only when this process already runs from the sealed copy; else
 * re-executes it (or returns -1 with err set). */
static int
run_from_sealed_copy (char **argv, grove_error_t *err)
{
  extern char **environ;
  cleanup_close int self = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cleanup_close int copy = -1;
  struct stat st;
  off_t done = 0;
  int seals;

  if (self < 0)
    return grove_error_set (err, errno, "exec: open /proc/self/exe");
  seals = fcntl (self, F_GET_SEALS);
  if (seals >= 0 && (seals & SEALS) == SEALS)
    return 0;
  if (fstat (self, &st) < 0)
    return grove_error_set (err, errno, "exec: fstat /proc/self/exe");
  copy = (int) syscall (SYS_memfd_create, "grove-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (copy < 0 && errno == EINVAL) /* before Linux 6.3 */
    copy = (int) syscall (SYS_memfd_create, "grove-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0)
    return grove_error_set (err, errno, "exec: memfd_create");
  while (done < st.st_size)
    {
      ssize_t n = sendfile (copy, self, NULL, (size_t) (st.st_size - done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return grove_error_set (err, n < 0 ? errno : EIO, "exec: copy the helper into a memfd");
      done += n;
    }
  /* F_SEAL_EXEC (Linux 6.3): nobody may change its mode bits either. */
  if (fcntl (copy, F_ADD_SEALS, F_SEAL_EXEC) < 0 && errno != EINVAL)
    return grove_error_set (err, errno, "exec: seal the memfd");
  if (fcntl (copy, F_ADD_SEALS, SEALS) < 0)
    return grove_error_set (err, errno, "exec: seal the memfd");
  syscall (SYS_execveat, copy, "", argv, environ, AT_EMPTY_PATH);
  return grove_error_set (err, errno, "exec: execveat the sealed copy");
}

/* ---- configuration -------------------------------------------------------- */


/* The keys only exec has (the process keys are shared with the shim). */
static int
exec_key (const char *key, char *val, grove_error_t *err)
{
  uint64_t n;
  if (strcmp (key, GROVE_KEY_ID) == 0)
    cfg.id = val;
  else if (strcmp (key, GROVE_KEY_CGROUP_MODE) == 0)
    cfg.cg_mode = val;
  else if (strcmp (key, GROVE_KEY_CGROUP_ROOT) == 0)
    cfg.cg_root = val;
  else if (strcmp (key, GROVE_KEY_CGROUP_PARENT) == 0)
    cfg.cg_parent = val;
  else if (strcmp (key, GROVE_KEY_CWD) == 0)
    cfg.cwd = val;
  else if (strcmp (key, GROVE_KEY_PID) == 0)
    cfg.pid = grove_parse_u64 (val, INT32_MAX, &n) == 0 ? (pid_t) n : 0;
  else if (strcmp (key, GROVE_KEY_TTY) == 0)
    cfg.tty = strcmp (val, "1") == 0;
  else if (strcmp (key, GROVE_KEY_COLS) == 0 || strcmp (key, GROVE_KEY_ROWS) == 0)
    {
      unsigned short *size = key[0] == 'c' ? &cfg.cols : &cfg.rows;
      *size = grove_parse_u64 (val, 65535, &n) == 0 ? (unsigned short) n : 0;
    }
  else
    return grove_error_set (err, EINVAL, "exec config: unknown key %s", key);
  return 0;
}

static int
parse_config (char *buf, size_t len, grove_error_t *err)
{
  size_t i = 0;
  char *key, *val;
  int more, r;
  memset (&cfg, 0, sizeof (cfg));
  cfg.cols = 80;
  cfg.rows = 24;
  while ((more = grove_config_next (buf, len, &i, &key, &val, "exec", err)) > 0)
    {
      r = grove_process_config_key (&cfg.proc, key, val, "exec", err);
      if (r < 0 || (r == 0 && exec_key (key, val, err) < 0))
        return -1;
    }
  if (more < 0)
    return -1;
  if (cfg.id == NULL || cfg.cg_mode == NULL || cfg.cg_root == NULL || cfg.cg_parent == NULL || cfg.pid <= 0)
    return grove_error_set (err, EINVAL, "exec config: id, pid, cgroup_* and arg are required");
  if (cfg.cols == 0 || cfg.rows == 0)
    return grove_error_set (err, EINVAL, "exec config: cols and rows must be positive");
  if (cfg.cwd == NULL || cfg.cwd[0] != '/')
    return grove_error_set (err, EINVAL, "exec config: cwd must be an absolute path");
  return grove_process_config_finish (&cfg.proc, "exec", err);
}

/* ---- the container's init ------------------------------------------------- */

/* The extra v1 hierarchies (grove_cgroup_v1_extra, as bits) the init is in at
 * /<parent>/<id>: a runtime handler's (runc puts it in every hierarchy) or the
 * ones its bundle joined; join_main joins the same. */
static unsigned init_v1_extras;

/* text: /proc/<pid>/cgroup; at: "/<parent>/<id>". */
static unsigned
v1_extras_at (const char *text, const char *at)
{
  unsigned bits = 0;
  char path[4096];
  for (size_t i = 0; i < GROVE_CGROUP_V1_NEXTRA; i++)
    {
      const char *name = grove_cgroup_v1_extra[i];
      const char *controller = strcmp (name, "unified") == 0   ? NULL
                               : strcmp (name, "systemd") == 0 ? "name=systemd"
                                                               : name;
      if (grove_cgroup_of (text, controller, path, sizeof (path)) == 0 && strcmp (path, at) == 0)
        bits |= 1u << i;
    }
  return bits;
}

/* Opens the init's namespaces that differ from ours (ns_fds[i] = -1 when the
 * same), after checking that pid is the container's init: it must be in the
 * container's cgroup and still alive (its pidfd) once everything is open. */
static int
open_container (int ns_fds[N_NS], grove_error_t *err)
{
  char path[64], want[1024];
  cleanup_close int pidfd = -1;
  cleanup_close int proc = -1;
  cleanup_close int cg_fd = -1;
  char text[8192];
  ssize_t n;
  int found = 0;

  for (size_t i = 0; i < N_NS; i++)
    ns_fds[i] = -1;
  pidfd = (int) syscall (SYS_pidfd_open, cfg.pid, 0);
  if (pidfd < 0)
    return grove_error_set (err, errno, "container %s: its init (pid %d) is gone", cfg.id, (int) cfg.pid);
  snprintf (path, sizeof (path), "/proc/%d", (int) cfg.pid);
  proc = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0)
    return grove_error_set (err, errno, "container %s: open %s", cfg.id, path);
  cg_fd = openat (proc, "cgroup", O_RDONLY | O_CLOEXEC);
  if (cg_fd < 0)
    return grove_error_set (err, errno, "container %s: open %s/cgroup", cfg.id, path);
  n = read (cg_fd, text, sizeof (text) - 1);
  if (n < 0)
    return grove_error_set (err, errno, "container %s: read %s/cgroup", cfg.id, path);
  text[n] = '\0';
  /* A line ending in /<parent>/<id> (v1: the memory line among others). */
  snprintf (want, sizeof (want), "/%s/%s\n", cfg.cg_parent, cfg.id);
  for (const char *hit = strstr (text, want); hit != NULL; hit = strstr (hit + 1, want))
    if (hit > text && hit[-1] == ':')
      found = 1;
  if (!found)
    return grove_error_set (err, ESRCH, "container %s: pid %d is not its init (not in its cgroup)", cfg.id,
                            (int) cfg.pid);
  if (strcmp (cfg.cg_mode, "v2") != 0)
    {
      want[strlen (want) - 1] = '\0';
      init_v1_extras = v1_extras_at (text, want);
    }
  for (size_t i = 0; i < N_NS; i++)
    {
      struct stat theirs, ours;
      char self_ns[64], rel[32];
      int fd;
      snprintf (rel, sizeof (rel), "ns/%s", namespaces[i].name);
      fd = openat (proc, rel, O_RDONLY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT)
        continue; /* this kernel has no such namespace */
      if (fd < 0)
        return grove_error_set (err, errno, "container %s: open %s/%s", cfg.id, path, rel);
      snprintf (self_ns, sizeof (self_ns), "/proc/self/ns/%s", namespaces[i].name);
      if (fstat (fd, &theirs) == 0 && stat (self_ns, &ours) == 0 && theirs.st_ino == ours.st_ino
          && theirs.st_dev == ours.st_dev)
        {
          close (fd);
          continue;
        }
      ns_fds[i] = fd;
    }
  /* Still the same process: the pid was not recycled while we opened its files. */
  if (syscall (SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    return grove_error_set (err, errno, "container %s: its init (pid %d) exited", cfg.id, (int) cfg.pid);
  return 0;
}

/* ---- join and process stages (after fork, single-threaded) ---------------- */

static int sync_fd = -1;

__attribute__ ((noreturn)) static void
stage_fail (int errnum, const char *fmt, ...)
{
  struct exec_msg m;
  va_list ap;
  size_t n;
  memset (&m, 0, sizeof (m));
  m.type = MSG_ERROR;
  m.errnum = errnum;
  va_start (ap, fmt);
  vsnprintf (m.msg, sizeof (m.msg), fmt, ap);
  va_end (ap);
  n = strlen (m.msg);
  if (errnum != 0)
    snprintf (m.msg + n, sizeof (m.msg) - n, ": %s", strerror (errnum));
  (void) send (sync_fd, &m, sizeof (m), MSG_NOSIGNAL);
  _exit (127);
}

static void
send_msg (int type, int pid, int fd)
{
  struct exec_msg m;
  struct iovec iov = { &m, sizeof (m) };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;

  memset (&m, 0, sizeof (m));
  memset (&mh, 0, sizeof (mh));
  m.type = type;
  m.pid = pid;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0)
    {
      struct cmsghdr *c;
      memset (&u, 0, sizeof (u));
      mh.msg_control = u.buf;
      mh.msg_controllen = sizeof (u.buf);
      c = CMSG_FIRSTHDR (&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (c), &fd, sizeof (int));
    }
  if (sendmsg (sync_fd, &mh, MSG_NOSIGNAL) < 0)
    stage_fail (errno, "exec: report to the helper");
}

/* The pty, allocated in the container's devpts: the master goes to the
 * helper, the slave becomes our controlling terminal and stdio. */
static void
process_tty (void)
{
  struct statfs sfs;
  struct winsize ws;
  int unlock = 0;
  int master, slave;

  master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    stage_fail (errno, "exec: open the container's /dev/ptmx");
  if (fstatfs (master, &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC)
    stage_fail (EPERM, "exec: the container's /dev/ptmx is not on a devpts");
  if (ioctl (master, TIOCSPTLCK, &unlock) < 0)
    stage_fail (errno, "exec: unlock the pty");
  /* The peer through the master's own mount: no path to race on. */
  slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    {
      unsigned int ptn;
      char name[64];
      if (ioctl (master, TIOCGPTN, &ptn) < 0)
        stage_fail (errno, "exec: TIOCGPTN");
      snprintf (name, sizeof (name), "/dev/pts/%u", ptn);
      slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (slave < 0)
        stage_fail (errno, "exec: open %s", name);
    }
  memset (&ws, 0, sizeof (ws));
  ws.ws_col = cfg.cols;
  ws.ws_row = cfg.rows;
  if (ioctl (slave, TIOCSWINSZ, &ws) < 0)
    stage_fail (errno, "exec: set the terminal size");
  /* The user owns its terminal (as login and runc do). */
  if (fchown (slave, cfg.proc.uid, (gid_t) -1) < 0)
    stage_fail (errno, "exec: chown the terminal");
  send_msg (MSG_TTY, 0, master);
  close (master);
  if (setsid () < 0)
    stage_fail (errno, "exec: setsid");
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    stage_fail (errno, "exec: make the pty the controlling terminal");
  if (dup2 (slave, 0) < 0 || dup2 (slave, 1) < 0 || dup2 (slave, 2) < 0)
    stage_fail (errno, "exec: dup2 the terminal");
  if (slave > 2)
    close (slave);
}

static void
process_drop_privileges (uint64_t caps)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];

  for (size_t i = 0; i < cfg.proc.nrlimits; i++)
    {
      struct rlimit rl = { (rlim_t) cfg.proc.rlimits[i].soft, (rlim_t) cfg.proc.rlimits[i].hard };
      if (setrlimit (cfg.proc.rlimits[i].resource, &rl) < 0)
        stage_fail (errno, "exec: setrlimit %d", cfg.proc.rlimits[i].resource);
    }
  for (int cap = 0; cap < 64; cap++)
    if (!(caps & (1ULL << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      stage_fail (errno, "exec: drop capability %d from the bounding set", cap);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    stage_fail (errno, "exec: clear ambient capabilities");
  if (setgroups (cfg.proc.ngroups, cfg.proc.groups) < 0)
    stage_fail (errno, "exec: setgroups");
  if (setresgid (cfg.proc.gid, cfg.proc.gid, cfg.proc.gid) < 0)
    stage_fail (errno, "exec: setgid %u", (unsigned) cfg.proc.gid);
  if (setresuid (cfg.proc.uid, cfg.proc.uid, cfg.proc.uid) < 0)
    stage_fail (errno, "exec: setuid %u", (unsigned) cfg.proc.uid);
  /* As for the init: root keeps exactly its set, any other user has none. */
  memset (data, 0, sizeof (data));
  if (cfg.proc.uid == 0)
    {
      data[0].effective = data[0].permitted = (uint32_t) caps;
      data[1].effective = data[1].permitted = (uint32_t) (caps >> 32);
    }
  if (syscall (SYS_capset, &hdr, data) < 0)
    stage_fail (errno, "exec: capset");
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    stage_fail (errno, "exec: no_new_privs");
}

__attribute__ ((noreturn)) static void
process_main (char **candidates, struct sock_fprog *filter)
{
  struct sigaction dfl;
  sigset_t none;
  char cwd_buf[4096];
  int exec_errno = ENOENT;

  memset (&dfl, 0, sizeof (dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction (sig, &dfl, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);

  if (cfg.tty)
    process_tty ();
  /* CVE-2024-21626: nothing of the host beyond stdio (the report socket is
   * O_CLOEXEC), and closed before the chdir so /proc/self/fd/N names nothing. */
  if (sync_fd > 3 && syscall (SYS_close_range, 3, (unsigned) sync_fd - 1, 0) < 0)
    stage_fail (errno, "exec: close_range");
  if (syscall (SYS_close_range, (unsigned) sync_fd + 1, ~0U, 0) < 0)
    stage_fail (errno, "exec: close_range");
  if (chdir (cfg.cwd) < 0)
    stage_fail (errno, "exec: chdir %s", cfg.cwd);
  if (syscall (SYS_getcwd, cwd_buf, sizeof (cwd_buf)) < 0)
    stage_fail (errno, "exec: getcwd after chdir %s", cfg.cwd);
  if (cwd_buf[0] != '/')
    stage_fail (EPERM, "exec: working directory %s escapes the container's root", cfg.cwd);
  process_drop_privileges (cfg.proc.caps_set ? cfg.proc.caps : GROVE_DEFAULT_CAPS);
  /* The process dies with the helper, whatever ends it (set after the
   * credential change, which clears it); a helper already gone hung up. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    stage_fail (errno, "exec: PR_SET_PDEATHSIG");
  {
    struct pollfd hup = { .fd = sync_fd, .events = 0 };
    if (poll (&hup, 1, 0) > 0 && (hup.revents & (POLLHUP | POLLERR)))
      _exit (137);
  }
  if (filter->len > 0 && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, filter, 0, 0) < 0)
    stage_fail (errno, "exec: install the seccomp filter");
  for (char **c = candidates; *c != NULL; c++)
    {
      execve (*c, cfg.proc.argv, cfg.proc.envp);
      if (errno != ENOENT && errno != ENOTDIR)
        exec_errno = errno;
    }
  stage_fail (exec_errno, "exec %s", cfg.proc.argv[0]);
}

__attribute__ ((noreturn)) static void
join_main (int ns_fds[N_NS], char **candidates, struct sock_fprog *filter)
{
  grove_cgroup_t cg;
  grove_error_t err;
  int deferred[N_NS];
  size_t ndeferred = 0;
  pid_t pid;

  /* Into the cgroups first, while the host's cgroupfs is still our view. */
  memset (&cg, 0, sizeof (cg));
  cg.mode = strcmp (cfg.cg_mode, "v2") == 0 ? GROVE_CGROUP_V2 : GROVE_CGROUP_V1;
  cg.root = cfg.cg_root;
  cg.parent = cfg.cg_parent;
  cg.id = cfg.id;
  cg.v1_join = init_v1_extras;
  if (grove_cgroup_ops_for (cg.mode)->enter (&cg, getpid (), &err) < 0)
    stage_fail (0, "exec: join the cgroup of %s: %s", cfg.id, err.msg);
  for (size_t i = 0; i < N_NS; i++)
    {
      if (ns_fds[i] < 0 || namespaces[i].type == CLONE_NEWUSER)
        continue;
      if (setns (ns_fds[i], namespaces[i].type) < 0)
        {
          if (errno == EPERM && ns_fds[N_NS - 1] >= 0)
            {
              deferred[ndeferred++] = (int) i; /* owned by the container's user namespace */
              continue;
            }
          stage_fail (errno, "exec: setns into the %s namespace of %s", namespaces[i].name, cfg.id);
        }
    }
  if (ns_fds[N_NS - 1] >= 0 && setns (ns_fds[N_NS - 1], CLONE_NEWUSER) < 0)
    stage_fail (errno, "exec: setns into the user namespace of %s", cfg.id);
  for (size_t k = 0; k < ndeferred; k++)
    if (setns (ns_fds[deferred[k]], namespaces[deferred[k]].type) < 0)
      stage_fail (errno, "exec: setns into the %s namespace of %s", namespaces[deferred[k]].name, cfg.id);
  for (size_t i = 0; i < N_NS; i++)
    if (ns_fds[i] >= 0)
      close (ns_fds[i]);

  /* The pid namespace applies to children: the process is inside from its
   * start. CLONE_PARENT: the helper, not this stage, is its parent. */
  pid = (pid_t) syscall (SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0)
    stage_fail (errno, "exec: fork into the pid namespace of %s", cfg.id);
  if (pid == 0)
    process_main (candidates, filter);
  send_msg (MSG_PID, (int) pid, -1);
  _exit (0);
}

/* ---- the helper ------------------------------------------------------------ */

struct relay
{
  char buf[RELAY_BUF];
  size_t len, off;
};

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one message (and a passed descriptor) from the stages: 1, 0 at EOF, -1. */
static int
recv_msg (int fd, struct exec_msg *m, int *passed)
{
  struct iovec iov = { m, sizeof (*m) };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  ssize_t n;

  memset (&mh, 0, sizeof (mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof (u.buf);
  do
    n = recvmsg (fd, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return (int) n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c != NULL; c = CMSG_NXTHDR (&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy (passed, CMSG_DATA (c), sizeof (int));
  if ((size_t) n != sizeof (*m))
    return -1;
  m->msg[sizeof (m->msg) - 1] = '\0';
  return 1;
}

static void
control_line (const char *line, pid_t pid, int exited, int master)
{
  if (strncmp (line, "signal ", 7) == 0)
    {
      int sig = atoi (line + 7);
      /* Our own child, not reaped yet: the pid cannot have been recycled. */
      if (!exited && sig > 0 && sig < NSIG)
        kill (pid, sig);
    }
  else if (strncmp (line, "resize ", 7) == 0 && master >= 0)
    {
      char *end;
      unsigned long cols = strtoul (line + 7, &end, 10);
      unsigned long rows = *end == ' ' ? strtoul (end + 1, &end, 10) : 0;
      if (*end == '\0' && cols > 0 && rows > 0 && cols < 65536 && rows < 65536)
        {
          struct winsize ws;
          memset (&ws, 0, sizeof (ws));
          ws.ws_col = (unsigned short) cols;
          ws.ws_row = (unsigned short) rows;
          ioctl (master, TIOCSWINSZ, &ws);
        }
    }
}

/* Moves what is buffered in r to fd; 0 when done or would block, -1 on error. */
static int
relay_flush (struct relay *r, int fd)
{
  while (r->off < r->len)
    {
      ssize_t n = write (fd, r->buf + r->off, r->len - r->off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno == EAGAIN ? 0 : -1;
      r->off += (size_t) n;
    }
  r->off = r->len = 0;
  return 0;
}

/* What the helper holds once the process runs. */
struct session
{
  pid_t pid;
  int master; /* the pty master, -1 without a tty */
  int sig_fd;
  int status;
  int exited, control_open, in_open, out_open, master_open;
  char ctl[256];
  size_t ctl_len;
  struct relay to_tty, from_tty;
};

/* Reaps what is left after a failure (the join stage; the process after its report). */
static int
reap_all_and_fail (void)
{
  while (waitpid (-1, NULL, 0) > 0 || errno == EINTR)
    ;
  return 1;
}

/* The helper up to the fork of the join stage: the sealed copy, the
 * configuration, the container's namespaces, the command's candidates and
 * the seccomp filter, SIGCHLD on a signalfd. 1 (reported) on failure. */
static int
exec_prepare (char **argv, int ns_fds[N_NS], char ***candidates, struct sock_fprog *filter, int *sig_fd)
{
  grove_error_t err;
  sigset_t mask;
  size_t len = 0;
  char *blob;
  memset (&err, 0, sizeof (err));
  if (run_from_sealed_copy (argv, &err) < 0)
    return status_error (err.errnum, err.msg), 1;
  /* From the copy on (execve made us dumpable again): nothing may open our
   * memory or descriptors through /proc, neither here nor in the stages. */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  blob = grove_read_all (FD_CONFIG, &len);
  close (FD_CONFIG);
  if (blob == NULL)
    return status_error (errno, "exec: reading the config failed"), 1;
  if (parse_config (blob, len, &err) < 0 || open_container (ns_fds, &err) < 0)
    return status_error (err.errnum, err.msg), 1;
  *candidates = grove_exec_candidates (cfg.proc.argv[0], cfg.proc.envp);
  if (*candidates == NULL)
    return status_error (ENOMEM, "exec: out of memory"), 1;
  /* The init's filter: the same program, the same capability gates. */
  if (cfg.proc.seccomp_bpf != NULL)
    {
      if (grove_seccomp_from_hex (cfg.proc.seccomp_bpf, filter) < 0)
        return status_error (errno, "exec: the seccomp filter"), 1;
    }
  else if (!cfg.proc.seccomp_unconfined
           && grove_seccomp_default (cfg.proc.caps_set ? cfg.proc.caps : GROVE_DEFAULT_CAPS, filter) < 0)
    return status_error (errno, "exec: the default seccomp filter"), 1;
  signal (SIGINT, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  *sig_fd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (*sig_fd < 0)
    return status_error (errno, "exec: signalfd/socketpair"), 1;
  return 0;
}

/* Forks the join stage and waits until every stage's end of the socket is
 * closed (the join stage exits, the process execs or reports its error):
 * the process's pid and, with a tty, the master. 1 (reported) on failure. */
static int
start_process (int ns_fds[N_NS], char **candidates, struct sock_fprog *filter, struct session *s)
{
  int socks[2], null_fd;
  pid_t join_pid;
  struct exec_msg m;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, socks) < 0)
    return status_error (errno, "exec: signalfd/socketpair"), 1;
  join_pid = fork ();
  if (join_pid < 0)
    return status_error (errno, "exec: fork"), 1;
  if (join_pid == 0)
    {
      close (socks[0]);
      sync_fd = socks[1];
      join_main (ns_fds, candidates, filter);
    }
  close (socks[1]);
  for (size_t i = 0; i < N_NS; i++)
    if (ns_fds[i] >= 0)
      close (ns_fds[i]);
  /* The session's descriptors live on in the process only (EOF when it and
   * its children are done); with a tty we relay 0 and 1 ourselves. */
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0)
    {
      if (!cfg.tty)
        {
          dup2 (null_fd, 0);
          dup2 (null_fd, 1);
        }
      dup2 (null_fd, 2);
    }
  for (;;)
    {
      int passed = -1;
      if (recv_msg (socks[0], &m, &passed) <= 0)
        break;
      if (m.type == MSG_PID)
        s->pid = m.pid;
      else if (m.type == MSG_TTY && passed >= 0)
        s->master = passed;
      else if (m.type == MSG_ERROR)
        {
          status_error (m.errnum, m.msg);
          return reap_all_and_fail ();
        }
      else if (passed >= 0)
        close (passed);
    }
  close (socks[0]);
  /* The join stage is gone once the process runs (our child, CLONE_PARENT). */
  while (waitpid (join_pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (s->pid <= 0)
    {
      status_error (ECHILD, "exec: the join stage died before starting the process");
      return reap_all_and_fail ();
    }
  return 0;
}

/* Control lines from the agent; EOF (the agent ended the session or is gone) kills the process. */
static void
read_control (struct session *s)
{
  char *nl;
  ssize_t n = read (FD_CONTROL, s->ctl + s->ctl_len, sizeof (s->ctl) - 1 - s->ctl_len);
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
    {
      s->control_open = 0;
      if (!s->exited)
        kill (s->pid, SIGKILL);
      return;
    }
  if (n < 0)
    return;
  s->ctl_len += (size_t) n;
  s->ctl[s->ctl_len] = '\0';
  while ((nl = strchr (s->ctl, '\n')) != NULL)
    {
      size_t used = (size_t) (nl - s->ctl) + 1;
      *nl = '\0';
      control_line (s->ctl, s->pid, s->exited, s->master);
      memmove (s->ctl, s->ctl + used, s->ctl_len - used + 1);
      s->ctl_len -= used;
    }
  if (s->ctl_len >= sizeof (s->ctl) - 1)
    s->ctl_len = 0;
}

/* Until the process exits: SIGCHLD, control lines and, with a tty, the relay. */
static void
relay_session (struct session *s)
{
  while (!s->exited)
    {
      struct pollfd p[5];
      p[0] = (struct pollfd){ .fd = s->sig_fd, .events = POLLIN };
      p[1] = (struct pollfd){ .fd = s->control_open ? FD_CONTROL : -1, .events = POLLIN };
      /* stdin -> pty when nothing is pending for it; pty -> stdout likewise. */
      p[2] = (struct pollfd){ .fd = s->in_open && s->to_tty.len == 0 ? 0 : -1, .events = POLLIN };
      /* (Output nobody reads any more is discarded: the process must not block on it.) */
      p[3] = (struct pollfd){ .events
                              = (short) ((s->from_tty.len == 0 ? POLLIN : 0) | (s->to_tty.len > 0 ? POLLOUT : 0)) };
      p[3].fd = s->master_open && p[3].events != 0 ? s->master : -1;
      p[4] = (struct pollfd){ .fd = s->from_tty.len > 0 && s->out_open ? 1 : -1, .events = POLLOUT };
      if (poll (p, 5, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (p[0].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          int st;
          pid_t r;
          while (read (s->sig_fd, &si, sizeof (si)) > 0)
            ;
          while ((r = waitpid (-1, &st, WNOHANG)) > 0)
            if (r == s->pid)
              {
                s->status = st;
                s->exited = 1;
              }
        }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        read_control (s);
      if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ssize_t n = read (0, s->to_tty.buf, sizeof (s->to_tty.buf));
          if (n > 0)
            s->to_tty.len = (size_t) n;
          else if (n == 0 || (errno != EINTR && errno != EAGAIN))
            s->in_open = 0; /* the terminal stays open: the process decides when to end */
        }
      if (s->master_open && s->to_tty.len > 0 && relay_flush (&s->to_tty, s->master) < 0)
        s->to_tty.len = s->to_tty.off = 0;
      if (s->from_tty.len == 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          ssize_t n = read (s->master, s->from_tty.buf, sizeof (s->from_tty.buf));
          if (n > 0 && s->out_open)
            s->from_tty.len = (size_t) n;
          else if (n == 0 || (errno != EINTR && errno != EAGAIN))
            s->master_open = 0; /* no slave open any more (EIO) */
        }
      if (s->from_tty.len > 0 && s->out_open && relay_flush (&s->from_tty, 1) < 0)
        s->out_open = 0;
    }
}

/* What the process wrote before it exited: read until every slave is closed
 * (EIO) or, when a background process keeps one open, briefly. */
static void
drain_tty (struct session *s)
{
  long long deadline = now_ms () + TTY_DRAIN_MS;
  fcntl (1, F_SETFL, fcntl (1, F_GETFL) & ~O_NONBLOCK);
  if (relay_flush (&s->from_tty, 1) < 0)
    s->out_open = 0;
  while (s->out_open && s->master_open)
    {
      struct pollfd q = { .fd = s->master, .events = POLLIN };
      long long left = deadline - now_ms ();
      ssize_t n;
      if (left <= 0 || poll (&q, 1, (int) left) <= 0)
        break;
      n = read (s->master, s->from_tty.buf, sizeof (s->from_tty.buf));
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        break;
      s->from_tty.len = (size_t) n;
      s->from_tty.off = 0;
      if (relay_flush (&s->from_tty, 1) < 0)
        break;
    }
}

int
grove_exec_main (int argc, char **argv)
{
  int ns_fds[N_NS];
  char **candidates = NULL;
  struct sock_fprog filter = { 0, NULL };
  struct session s;
  char line[128];

  (void) argc;
  memset (&s, 0, sizeof (s));
  s.master = -1;
  s.control_open = s.in_open = s.out_open = s.master_open = 1;
  /* Only 0-5 are ours. */
  syscall (SYS_close_range, FD_STATUS + 1, ~0U, 0);
  signal (SIGPIPE, SIG_IGN);
  if (exec_prepare (argv, ns_fds, &candidates, &filter, &s.sig_fd) != 0
      || start_process (ns_fds, candidates, &filter, &s) != 0)
    return 1;
  snprintf (line, sizeof (line), "{\"pid\":%d}\n", (int) s.pid);
  status_write (line);

  if (s.master >= 0)
    {
      fcntl (s.master, F_SETFL, O_NONBLOCK);
      fcntl (0, F_SETFL, fcntl (0, F_GETFL) | O_NONBLOCK);
      fcntl (1, F_SETFL, fcntl (1, F_GETFL) | O_NONBLOCK);
    }
  else
    s.in_open = s.out_open = s.master_open = 0;
  relay_session (&s);
  if (s.master >= 0 && s.out_open)
    drain_tty (&s);
  if (!s.exited)
    {
      /* poll failed: make sure the process does not outlive the session. */
      kill (s.pid, SIGKILL);
      while (waitpid (s.pid, &s.status, 0) < 0 && errno == EINTR)
        ;
    }
  if (WIFEXITED (s.status))
    snprintf (line, sizeof (line), "{\"exitCode\":%d,\"signal\":0}\n", WEXITSTATUS (s.status));
  else
    {
      int sig = WIFSIGNALED (s.status) ? WTERMSIG (s.status) : 0;
      snprintf (line, sizeof (line), "{\"exitCode\":%d,\"signal\":%d}\n", 128 + sig, sig);
    }
  status_write (line);
  return 0;
}
