// raw-syn IFACE DST_MAC DST_IP DST_PORT [WAIT_MS]
//
// Sends a TCP SYN for DST_IP:DST_PORT as a hand-made Ethernet frame to
// DST_MAC out of IFACE, as any process with CAP_NET_RAW can (the
// CVE-2020-8558 pattern: a frame for 127.0.0.1 addressed to the node's
// bridge), and prints "<DST_IP>:<DST_PORT> SYNACK" when the answer comes
// back or "<DST_IP>:<DST_PORT> NOANSWER" when none does within WAIT_MS
// (default 1500). Built statically by the test and run inside a container.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint16_t checksum(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (len) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int fail(const char *what) {
  fprintf(stderr, "raw-syn: %s: %s\n", what, strerror(errno));
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: raw-syn IFACE DST_MAC DST_IP DST_PORT [WAIT_MS]\n");
    return 2;
  }
  const char *iface = argv[1];
  uint8_t dst_mac[6];
  if (sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dst_mac[0], &dst_mac[1], &dst_mac[2], &dst_mac[3],
             &dst_mac[4], &dst_mac[5]) != 6) {
    fprintf(stderr, "raw-syn: bad MAC %s\n", argv[2]);
    return 2;
  }
  struct in_addr dst_ip;
  if (inet_pton(AF_INET, argv[3], &dst_ip) != 1) {
    fprintf(stderr, "raw-syn: bad IPv4 address %s\n", argv[3]);
    return 2;
  }
  uint16_t dst_port = (uint16_t)atoi(argv[4]);
  long wait_ms = argc > 5 ? atol(argv[5]) : 1500;

  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
  if (fd < 0) return fail("socket(AF_PACKET)");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", iface);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return fail("SIOCGIFINDEX");
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) return fail("SIOCGIFHWADDR");
  uint8_t src_mac[6];
  memcpy(src_mac, ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd, SIOCGIFADDR, &ifr) < 0) return fail("SIOCGIFADDR");
  struct in_addr src_ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;

  srand((unsigned)(getpid() ^ now_ms()));
  uint16_t src_port = (uint16_t)(40000 + rand() % 20000);

  uint8_t frame[sizeof(struct ether_header) + sizeof(struct iphdr) + sizeof(struct tcphdr)];
  memset(frame, 0, sizeof frame);
  struct ether_header *eth = (struct ether_header *)frame;
  memcpy(eth->ether_dhost, dst_mac, 6);
  memcpy(eth->ether_shost, src_mac, 6);
  eth->ether_type = htons(ETHERTYPE_IP);
  struct iphdr *ip = (struct iphdr *)(eth + 1);
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons(sizeof(struct iphdr) + sizeof(struct tcphdr));
  ip->id = htons((uint16_t)rand());
  ip->frag_off = htons(IP_DF);
  ip->ttl = 64;
  ip->protocol = IPPROTO_TCP;
  ip->saddr = src_ip.s_addr;
  ip->daddr = dst_ip.s_addr;
  ip->check = checksum(ip, sizeof *ip, 0);
  struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
  tcp->source = htons(src_port);
  tcp->dest = htons(dst_port);
  tcp->seq = htonl((uint32_t)rand());
  tcp->doff = 5;
  tcp->syn = 1;
  tcp->window = htons(64240);
  // The pseudo-header's sum (addresses, protocol, length) seeds the TCP checksum.
  uint32_t pseudo = 0;
  const uint8_t *a = (const uint8_t *)&ip->saddr;
  for (int i = 0; i < 8; i += 2) pseudo += (uint32_t)a[i] << 8 | a[i + 1];
  pseudo += IPPROTO_TCP + sizeof(struct tcphdr);
  tcp->check = checksum(tcp, sizeof *tcp, pseudo);

  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, dst_mac, 6);

  long deadline = now_ms() + wait_ms, next_send = 0;
  int sent = 0;
  uint8_t buf[2048];
  while (now_ms() < deadline) {
    if (sent < 3 && now_ms() >= next_send) {
      if (sendto(fd, frame, sizeof frame, 0, (struct sockaddr *)&to, sizeof to) < 0) return fail("sendto");
      sent++;
      next_send = now_ms() + 300;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 50) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < (ssize_t)(sizeof(struct ether_header) + sizeof(struct iphdr))) continue;
    const struct iphdr *rip = (const struct iphdr *)(buf + sizeof(struct ether_header));
    if (rip->protocol != IPPROTO_TCP) continue;
    size_t off = sizeof(struct ether_header) + rip->ihl * 4u;
    if ((size_t)n < off + sizeof(struct tcphdr)) continue;
    const struct tcphdr *rt = (const struct tcphdr *)(buf + off);
    if (ntohs(rt->source) == dst_port && ntohs(rt->dest) == src_port && rt->syn && rt->ack) {
      printf("%s:%u SYNACK\n", argv[3], dst_port);
      return 0;
    }
  }
  printf("%s:%u NOANSWER\n", argv[3], dst_port);
  return 0;
}
