// SPDX-License-Identifier: BSD-2-Clause
/*
 * TLS for the OTLP client through OpenSSL memory BIOs. The exporter's
 * io_uring loop owns the socket: it writes whatever ciphertext OpenSSL
 * leaves in the write BIO to the socket, and puts whatever the socket
 * returns into the read BIO. OpenSSL only transforms bytes, so TLS adds no
 * blocking and no second I/O path. All calls come from the exporter thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "exporter_internal.h"

static void last_error(char *buf, size_t cap, const char *what)
{
	unsigned long e = ERR_get_error();
	if (e) {
		char es[256];
		ERR_error_string_n(e, es, sizeof(es));
		snprintf(buf, cap, "%s: %s", what, es);
	} else {
		snprintf(buf, cap, "%s", what);
	}
	ERR_clear_error();
}

SSL_CTX *tls_ctx__new(const char *ca_file, bool insecure, char *err, size_t err_cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		last_error(err, err_cap, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (!SSL_CTX_set_default_verify_paths(ctx)) {
		/* No system store is not fatal when a CA file is given. */
		ERR_clear_error();
	}
	if (ca_file && !SSL_CTX_load_verify_locations(ctx, ca_file, NULL)) {
		char what[512];
		snprintf(what, sizeof(what), "cannot load CA file %s", ca_file);
		last_error(err, err_cap, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	/* Offer HTTP/1.1 only, so an h2-capable collector does not pick h2. */
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
	return ctx;
}

void tls_ctx__free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

int tls_conn__init(struct tls_conn *t, SSL_CTX *ctx, const char *host, bool host_is_ip)
{
	memset(t, 0, sizeof(*t));
	t->ssl = SSL_new(ctx);
	if (!t->ssl)
		goto fail;
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		t->rbio = t->wbio = NULL;
		goto fail;
	}
	/* An empty read BIO means "retry later", not end of file. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio); /* ssl owns both now */
	SSL_set_connect_state(t->ssl);
	if (host_is_ip) {
		/* No SNI for an address (RFC 6066); check the certificate's IP SAN. */
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		if (!X509_VERIFY_PARAM_set1_ip_asc(vp, host))
			goto fail;
	} else {
		if (!SSL_set_tlsext_host_name(t->ssl, host) || !SSL_set1_host(t->ssl, host))
			goto fail;
	}
	return 0;
fail:
	ERR_clear_error();
	tls_conn__deinit(t);
	return -ENOMEM;
}

void tls_conn__deinit(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* frees the BIOs too */
	memset(t, 0, sizeof(*t));
}

int tls_conn__handshake(struct tls_conn *t)
{
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return 1;
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return -EPROTO;
}

size_t tls_conn__out_pending(struct tls_conn *t)
{
	return BIO_ctrl_pending(t->wbio);
}

size_t tls_conn__out_read(struct tls_conn *t, void *buf, size_t cap)
{
	size_t got = 0;
	if (BIO_read_ex(t->wbio, buf, cap, &got) != 1)
		return 0;
	return got;
}

int tls_conn__in_write(struct tls_conn *t, const void *buf, size_t n)
{
	size_t done = 0;
	if (BIO_write_ex(t->rbio, buf, n, &done) != 1 || done != n)
		return -ENOMEM;
	return 0;
}

int tls_conn__write(struct tls_conn *t, const void *buf, size_t n)
{
	size_t done = 0;
	ERR_clear_error();
	/* A memory BIO takes everything, so the whole buffer is encrypted. */
	if (SSL_write_ex(t->ssl, buf, n, &done) != 1)
		return -EPROTO;
	return (int)done;
}

int tls_conn__read(struct tls_conn *t, void *buf, size_t cap)
{
	size_t got = 0;
	ERR_clear_error();
	if (SSL_read_ex(t->ssl, buf, cap, &got) == 1)
		return (int)got;
	switch (SSL_get_error(t->ssl, 0)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -EPIPE;
	default:
		return -EPROTO;
	}
}

void tls_conn__error(struct tls_conn *t, char *buf, size_t cap)
{
	long v = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
	if (v != X509_V_OK) {
		snprintf(buf, cap, "certificate verification failed: %s",
			 X509_verify_cert_error_string(v));
		ERR_clear_error();
		return;
	}
	last_error(buf, cap, "TLS error");
}
