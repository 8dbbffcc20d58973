/* policy.h - which origin addresses the edge may connect to: never one of its own listen
 * addresses (the edge would call itself), and no loopback/private/link-local address when
 * the zone says allow_private: false. Checked on every address before connecting, so a
 * DNS answer that changes is judged as it arrives. */
#ifndef VERGE_EDGE_POLICY_H
#define VERGE_EDGE_POLICY_H

#include "core/config.h"
#include "edge/proxy_error.h"

/* PROXY_ERR_NONE when sa may be connected to; PROXY_ERR_PROXY_LOOP_DETECTED or
 * PROXY_ERR_DESTINATION_IP_PROHIBITED otherwise, with a reason in why. */
enum proxy_error_type policy_check_addr(const struct config *cfg, const struct config_zone *z,
                                        const struct sockaddr *sa, char *why, size_t whylen);

/* Is this address loopback, private (RFC 1918, RFC 4193, CGNAT), link-local or
 * unspecified? IPv4-mapped IPv6 addresses are judged as IPv4. */
bool policy_addr_is_private(const struct sockaddr *sa);

/* Loopback (127/8, ::1, IPv4-mapped 127/8)? */
bool policy_addr_is_loopback(const struct sockaddr *sa);
/* An address of this host: loopback or any of its interfaces' (getifaddrs)? */
bool policy_addr_is_local(const struct sockaddr *sa);

#endif
