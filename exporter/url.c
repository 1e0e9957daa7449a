// SPDX-License-Identifier: BSD-2-Clause
/*
 * Endpoint URL parsing for the OTLP/HTTP client: scheme, host, port and the
 * request target, nothing more (no user info, no percent-decoding: the path
 * is sent as written, so it must already be encoded).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "exporter_internal.h"

static int fail(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EINVAL;
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

int otlp_url__parse(const char *s, struct otlp_url *u, const char **why)
{
	memset(u, 0, sizeof(*u));
	if (!s)
		return fail(why, "no URL");
	if (!strncasecmp(s, "http://", 7)) {
		s += 7;
	} else if (!strncasecmp(s, "https://", 8)) {
		u->https = true;
		s += 8;
	} else {
		return fail(why, "the scheme must be http:// or https://");
	}

	size_t alen = strcspn(s, "/?#");
	const char *auth = s, *rest = s + alen;
	if (memchr(auth, '@', alen))
		return fail(why, "user info in the URL is not supported (use a header)");

	const char *host, *port = NULL;
	size_t hlen, plen = 0;
	if (alen && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		if (!close)
			return fail(why, "unterminated IPv6 address");
		host = auth + 1;
		hlen = (size_t)(close - host);
		const char *after = close + 1;
		if (after < rest) {
			if (*after != ':')
				return fail(why, "junk after the IPv6 address");
			port = after + 1;
			plen = (size_t)(rest - port);
		}
		char tmp[OTLP_URL_HOST_MAX];
		struct in6_addr a6;
		if (hlen == 0 || hlen >= sizeof(tmp))
			return fail(why, "bad IPv6 address");
		memcpy(tmp, host, hlen);
		tmp[hlen] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return fail(why, "bad IPv6 address");
	} else {
		const char *colon = memchr(auth, ':', alen);
		host = auth;
		hlen = colon ? (size_t)(colon - auth) : alen;
		if (colon) {
			port = colon + 1;
			plen = (size_t)(rest - port);
		}
		for (size_t i = 0; i < hlen; i++) {
			if (!host_char_ok(host[i]))
				return fail(why, "bad character in the host name");
		}
	}
	if (hlen == 0)
		return fail(why, "no host");
	if (hlen >= sizeof(u->host))
		return fail(why, "host name too long");
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';

	unsigned long pnum = OTLP_DEFAULT_PORT;
	if (port) {
		if (plen == 0 || plen > 5)
			return fail(why, "bad port");
		pnum = 0;
		for (size_t i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				return fail(why, "bad port");
			pnum = pnum * 10 + (unsigned long)(port[i] - '0');
		}
		if (pnum == 0 || pnum > 65535)
			return fail(why, "port out of range (1-65535)");
	}
	snprintf(u->port, sizeof(u->port), "%lu", pnum);

	struct in_addr a4;
	struct in6_addr a6;
	u->host_is_ip =
		inet_pton(AF_INET, u->host, &a4) == 1 || inet_pton(AF_INET6, u->host, &a6) == 1;
	bool v6 = strchr(u->host, ':') != NULL;
	unsigned long scheme_port = u->https ? 443 : 80;
	if (pnum == scheme_port)
		snprintf(u->host_header, sizeof(u->host_header), v6 ? "[%s]" : "%s", u->host);
	else
		snprintf(u->host_header, sizeof(u->host_header), v6 ? "[%s]:%lu" : "%s:%lu",
			 u->host, pnum);

	/* The fragment is never sent. */
	size_t tlen = strcspn(rest, "#");
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)rest[i];
		if (c <= ' ' || c == 0x7f)
			return fail(why, "spaces and control characters must be percent-encoded");
	}
	if (tlen == 0 || (tlen == 1 && rest[0] == '/')) {
		snprintf(u->path, sizeof(u->path), "%s", OTLP_DEFAULT_PATH);
	} else {
		bool slash = rest[0] == '/';
		if (tlen + (slash ? 0 : 1) >= sizeof(u->path))
			return fail(why, "path too long");
		snprintf(u->path, sizeof(u->path), "%s%.*s", slash ? "" : "/", (int)tlen, rest);
	}
	return 0;
}
