/* Sockets inside another network namespace, for health probes from inside an
 * instance: its 127.0.0.1 and its ports bound there are reachable only from
 * its own namespace.
 *
 * setns (CLONE_NEWNET) moves the calling thread only, and a socket stays in
 * the namespace it was made in. So a short-lived thread enters the
 * namespace, makes the socket and ends: no thread of the agent (the event
 * loop, the libuv pool) ever leaves the node's namespace, and no process is
 * made per probe. Connecting (non-blocking) is the caller's: Node adopts the
 * fd (net.Socket({ fd })). */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

struct socket_job
{
  int netns_fd;
  int domain;
  int type;
  int fd;         /* the socket, -1 until made */
  int errnum;     /* why not */
  const char *op; /* which call failed */
};

static void *
make_socket_in_netns (void *arg)
{
  struct socket_job *job = arg;
  if (setns (job->netns_fd, CLONE_NEWNET) < 0)
    {
      job->errnum = errno;
      job->op = "setns";
      return NULL;
    }
  job->fd = socket (job->domain, job->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (job->fd < 0)
    {
      job->errnum = errno;
      job->op = "socket";
    }
  return NULL;
}

int
grove_netns_socket (const char *netns_path, int domain, int type, grove_error_t *err)
{
  if (domain != AF_INET && domain != AF_INET6)
    return grove_error_set (err, EINVAL, "netns socket: domain %d is not AF_INET or AF_INET6", domain);
  if (type != SOCK_STREAM && type != SOCK_DGRAM)
    return grove_error_set (err, EINVAL, "netns socket: type %d is not SOCK_STREAM or SOCK_DGRAM", type);
  cleanup_close int ns = open (netns_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (ns < 0)
    return grove_error_set (err, errno, "open %s", netns_path);
  struct socket_job job = { .netns_fd = ns, .domain = domain, .type = type, .fd = -1, .errnum = 0, .op = NULL };
  pthread_t thread;
  int rc = pthread_create (&thread, NULL, make_socket_in_netns, &job);
  if (rc != 0)
    return grove_error_set (err, rc, "netns socket: pthread_create");
  rc = pthread_join (thread, NULL);
  if (rc != 0) /* cannot happen for a joinable thread of ours; the job may still run */
    return grove_error_set (err, rc, "netns socket: pthread_join");
  if (job.fd < 0)
    {
      /* EINVAL from setns: the file is not a network namespace. */
      return grove_error_set (err, job.errnum, "%s into the network namespace %s", job.op ? job.op : "?",
                              netns_path);
    }
  return job.fd;
}
