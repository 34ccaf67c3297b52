/* dp_net.c — Ethernet, ARP, IPv4, ICMP echo and UDP on the data-plane lcore.
 *
 * Every frame is checked before anything reads past its end: single
 * segment, Ethernet II, IPv4 header length and checksum, no IP fragments,
 * addressed to us, UDP length and checksum.  A UDP checksum of 0 is legal
 * IPv4 (RFC 768) and is accepted (counted); a checksum a veth/tap peer left
 * unfinished (transmit offload: the field holds the pseudo-header sum) is
 * completed in software and accepted (counted).  Anything else is dropped
 * and counted in metrics rx_dropped and a per-reason counter.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "net/dp/dp.h"

#define HDRS_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		  sizeof(struct rte_udp_hdr))

static void drop(struct dp *d, struct rte_mbuf *m, uint64_t *reason)
{
	(*reason)++;
	atomic_fetch_add_explicit(&d->m->rx_dropped, 1, memory_order_relaxed);
	rte_pktmbuf_free(m);
}

void dp_tx_queue(struct dp *d, struct rte_mbuf *m, const struct dp_txmeta *meta)
{
	if (d->ntx == DP_TXQ_MAX)
		dp_tx_flush(d);
	d->txq[d->ntx] = m;
	d->txm[d->ntx] = meta ? *meta : (struct dp_txmeta){ .req = -1 };
	d->ntx++;
}

static void sample(struct dp_samples *s, uint64_t v)
{
	s->v[s->next] = v;
	s->next = (s->next + 1) & (DP_SAMPLES - 1);
	if (s->n < DP_SAMPLES)
		s->n++;
}

/* Latency of the token packets about to go out, taken right before
 * tx_burst: TTFT from the request's rx_burst, inter-token from the
 * previous token's tx_burst; card time and the rest (appliance overhead). */
static void time_tokens(struct dp *d, uint64_t t)
{
	for (uint32_t i = 0; i < d->ntx; i++) {
		const struct dp_txmeta *x = &d->txm[i];
		struct dp_req *r;
		uint64_t lat, card = 0, over;

		if (x->req < 0)
			continue;
		r = &d->reqs[x->req];
		if (x->first) {
			lat = dp_tsc_to_ns(d, t - r->rx_tsc);
			nc_hist_add(&d->m->ttft, lat);
			sample(&d->s_ttft, lat);
		} else if (r->last_tx_tsc) {
			lat = dp_tsc_to_ns(d, t - r->last_tx_tsc);
			nc_hist_add(&d->m->itl, lat);
			sample(&d->s_itl, lat);
		} else {
			continue;
		}
		card = x->card_ns;
		over = lat > card ? lat - card : 0;
		nc_hist_add(&d->m->card_step, card);
		nc_hist_add(&d->m->overhead, over);
		sample(&d->s_card, card);
		sample(&d->s_over, over);
		sample(&d->s_host, dp_tsc_to_ns(d, t - x->ev_tsc));
		r->last_tx_tsc = t;
	}
}

void dp_tx_flush(struct dp *d)
{
	uint16_t sent = 0, n = (uint16_t)d->ntx;
	int tries = 0;

	if (!n)
		return;
	time_tokens(d, rte_rdtsc());
	if (d->loss_ppm) {	/* test hook: lose some frames on the way out */
		uint16_t k = 0;

		for (uint16_t i = 0; i < n; i++) {
			if (dp_lose(d)) {
				rte_pktmbuf_free(d->txq[i]);
				d->c.inj_tx_drops++;
			} else {
				d->txq[k++] = d->txq[i];
			}
		}
		n = k;
	}
	while (sent < n && tries++ < 4)
		sent += rte_eth_tx_burst(d->port_id, 0, d->txq + sent, n - sent);
	atomic_fetch_add_explicit(&d->m->tx_packets, sent, memory_order_relaxed);
	if (sent < n) {
		d->c.tx_dropped += n - sent;	/* stream packets come back by RTO */
		rte_pktmbuf_free_bulk(d->txq + sent, n - sent);
	}
	d->ntx = 0;
}

struct rte_mbuf *dp_udp_alloc(struct dp *d, const struct dp_peer *to, uint16_t len,
			      uint8_t **payload)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;
	char *p;

	if (!m) {
		d->c.tx_nombuf++;
		return NULL;
	}
	p = rte_pktmbuf_append(m, (uint16_t)(HDRS_LEN + len));
	if (!p) {
		d->c.tx_nombuf++;
		rte_pktmbuf_free(m);
		return NULL;
	}
	eth = (struct rte_ether_hdr *)p;
	rte_ether_addr_copy(&to->mac, &eth->dst_addr);
	rte_ether_addr_copy(&d->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = d->ip;
	ip->dst_addr = to->ip;
	udp = (struct rte_udp_hdr *)(ip + 1);
	udp->src_port = d->udp_port;
	udp->dst_port = to->port;
	*payload = (uint8_t *)(udp + 1);
	return m;
}

void dp_udp_send(struct dp *d, struct rte_mbuf *m, uint16_t len,
		 const struct dp_txmeta *meta)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
							   sizeof(struct rte_ether_hdr));
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - HDRS_LEN - len));
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + len));
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + len));
	udp->dgram_cksum = 0;
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);	/* 0 comes out as 0xffff */
	dp_tx_queue(d, m, meta);
}

static void rx_arp(struct dp *d, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
	uint32_t sip;

	if (rte_pktmbuf_data_len(m) < sizeof(*eth) + sizeof(*a) ||
	    a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != 4 ||
	    a->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) ||
	    a->arp_data.arp_tip != d->ip) {
		drop(d, m, &d->c.drop_arp);
		return;
	}
	sip = a->arp_data.arp_sip;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	rte_ether_addr_copy(&a->arp_data.arp_sha, &a->arp_data.arp_tha);
	a->arp_data.arp_tip = sip;
	rte_ether_addr_copy(&d->mac, &a->arp_data.arp_sha);
	a->arp_data.arp_sip = d->ip;
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&d->mac, &eth->src_addr);
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - sizeof(*eth) - sizeof(*a)));
	d->c.arp_replies++;
	dp_tx_queue(d, m, NULL);
}

/* Echo request -> echo reply in the same mbuf. */
static void rx_icmp(struct dp *d, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
		    uint16_t l4len)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)((uint8_t *)ip + rte_ipv4_hdr_len(ip));
	uint32_t a;

	if (l4len < sizeof(*ic) || ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST ||
	    ic->icmp_code != 0 || rte_raw_cksum(ic, l4len) != 0xffff) {
		drop(d, m, &d->c.drop_icmp);
		return;
	}
	ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ic->icmp_cksum = 0;
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, l4len);
	a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&d->mac, &eth->src_addr);
	d->c.icmp_replies++;
	dp_tx_queue(d, m, NULL);
}

/* Folded sum of the IPv4 pseudo header for a UDP datagram of ulen bytes. */
static uint16_t pseudo_sum(const struct rte_ipv4_hdr *ip, uint16_t ulen)
{
	uint32_t s = 0;

	s += rte_raw_cksum(&ip->src_addr, 8);
	s += rte_cpu_to_be_16(IPPROTO_UDP);
	s += rte_cpu_to_be_16(ulen);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* 0: checksum good (or legally absent, or left for us to finish). */
static int udp_csum_ok(struct dp *d, const struct rte_ipv4_hdr *ip,
		       const struct rte_udp_hdr *udp, uint16_t ulen)
{
	uint32_t s;

	if (udp->dgram_cksum == 0) {
		d->c.csum_zero++;
		return 0;
	}
	s = (uint32_t)pseudo_sum(ip, ulen) + rte_raw_cksum(udp, ulen);
	s = (s & 0xffff) + (s >> 16);
	if (s == 0xffff)
		return 0;
	/* Transmit offload of a veth/tap peer: the field holds the pseudo-header
	 * sum and the rest was never added.  Nothing on the wire verifies these
	 * bytes, so accept them as the kernel would for a local CHECKSUM_PARTIAL. */
	if (udp->dgram_cksum == pseudo_sum(ip, ulen)) {
		d->c.csum_partial++;
		return 0;
	}
	return -1;
}

static void rx_udp(struct dp *d, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
		   uint16_t l4len, uint64_t rx_tsc)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + rte_ipv4_hdr_len(ip));
	struct dp_peer from;
	uint16_t ulen;

	if (l4len < sizeof(*udp)) {
		drop(d, m, &d->c.drop_udp_len);
		return;
	}
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(*udp) || ulen > l4len) {
		drop(d, m, &d->c.drop_udp_len);
		return;
	}
	if (udp->dst_port != d->udp_port) {
		drop(d, m, &d->c.drop_udp_port);
		return;
	}
	if (udp_csum_ok(d, ip, udp, ulen)) {
		drop(d, m, &d->c.drop_udp_csum);
		return;
	}
	rte_ether_addr_copy(&eth->src_addr, &from.mac);
	from.ip = ip->src_addr;
	from.port = udp->src_port;
	if (!dp_proto_rx(d, m, (const uint8_t *)(udp + 1), (uint16_t)(ulen - sizeof(*udp)),
			 &from, rx_tsc))
		rte_pktmbuf_free(m);
}

void dp_rx(struct dp *d, struct rte_mbuf *m, uint64_t rx_tsc)
{
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	uint16_t len, hl, tot;

	atomic_fetch_add_explicit(&d->m->rx_packets, 1, memory_order_relaxed);
	if (dp_lose(d)) {
		d->c.inj_rx_drops++;
		rte_pktmbuf_free(m);
		return;
	}
	if (m->nb_segs != 1) {
		drop(d, m, &d->c.drop_segs);
		return;
	}
	len = rte_pktmbuf_data_len(m);
	if (len < sizeof(*eth)) {
		drop(d, m, &d->c.drop_short);
		return;
	}
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		rx_arp(d, m);
		return;
	}
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		drop(d, m, &d->c.drop_ether);
		return;
	}
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	if (len < sizeof(*eth) + sizeof(*ip) || (ip->version_ihl >> 4) != 4 ||
	    (hl = rte_ipv4_hdr_len(ip)) < sizeof(*ip) || len < sizeof(*eth) + hl) {
		drop(d, m, &d->c.drop_ip_hdr);
		return;
	}
	tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < hl || sizeof(*eth) + tot > len) {
		drop(d, m, &d->c.drop_ip_hdr);
		return;
	}
	if (rte_raw_cksum(ip, hl) != 0xffff) {
		drop(d, m, &d->c.drop_ip_csum);
		return;
	}
	if (ip->dst_addr != d->ip) {
		drop(d, m, &d->c.drop_not_ours);
		return;
	}
	if (rte_be_to_cpu_16(ip->fragment_offset) &
	    (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		drop(d, m, &d->c.drop_ip_frag);
		return;
	}
	/* Ethernet padding of short frames is not ours */
	rte_pktmbuf_trim(m, (uint16_t)(len - sizeof(*eth) - tot));
	if (ip->next_proto_id == IPPROTO_UDP)
		rx_udp(d, m, ip, (uint16_t)(tot - hl), rx_tsc);
	else if (ip->next_proto_id == IPPROTO_ICMP)
		rx_icmp(d, m, ip, (uint16_t)(tot - hl));
	else
		drop(d, m, &d->c.drop_proto);
}
