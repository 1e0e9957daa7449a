// SPDX-License-Identifier: BSD-2-Clause
/*
 * Resolution order, per the OpenTelemetry exporter spec: a flag wins; then
 * the profiles-specific variable (OTEL_EXPORTER_OTLP_PROFILES_*); then the
 * generic one (OTEL_EXPORTER_OTLP_*); then the default. A signal-specific
 * endpoint is used as is; a generic or flag endpoint without a path gets
 * /v1development/profiles appended.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otlp_setup.h"

#define OTLP_PROFILES_PATH "/v1development/profiles"

/* Returns the profiles-specific variable's value, else the generic one's, and
 * the name of the one used through *name. NULL when neither is set. */
static const char *otel_env(const char *suffix, const char **name)
{
	static char specific[64], generic[64];
	snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_PROFILES_%s", suffix);
	snprintf(generic, sizeof(generic), "OTEL_EXPORTER_OTLP_%s", suffix);
	const char *v = getenv(specific);
	if (v && *v) {
		*name = specific;
		return v;
	}
	v = getenv(generic);
	if (v && *v) {
		*name = generic;
		return v;
	}
	return NULL;
}

/* "scheme://host[:port]" has no path when nothing but an optional "/" follows
 * the authority. */
static bool url_has_path(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p = strchr(p, '/');
	return p && p[1];
}

static char *url_with_path(const char *base)
{
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	char *url = malloc(n + sizeof(OTLP_PROFILES_PATH));
	if (url)
		sprintf(url, "%.*s%s", (int)n, base, OTLP_PROFILES_PATH);
	return url;
}

static int resolve_url(struct otlp_setup *s, const struct pipeline_config *cfg)
{
	const char *name = NULL;
	if (cfg->otlp_endpoint) {
		s->url = url_has_path(cfg->otlp_endpoint) ? strdup(cfg->otlp_endpoint)
							  : url_with_path(cfg->otlp_endpoint);
	} else if ((name = getenv("OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT")) && *name) {
		s->url = strdup(name);
	} else if ((name = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *name) {
		s->url = url_with_path(name);
	} else {
		return 0;
	}
	if (!s->url)
		return -ENOMEM;
	s->enabled = true;
	return 0;
}

static int add_header(struct otlp_setup *s, const char *key, size_t klen, const char *value)
{
	char **h = realloc(s->headers, (s->n_headers + 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->headers = h;
	size_t n = klen + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return -ENOMEM;
	snprintf(line, n, "%.*s: %s", (int)klen, key, value);
	s->headers[s->n_headers++] = line;
	return 0;
}

static int resolve_headers(struct otlp_setup *s, const struct pipeline_config *cfg)
{
	const char *name = NULL;
	const char *env = otel_env("HEADERS", &name);
	int err;
	if (env) {
		struct otlp_attr *kv = NULL;
		size_t n = 0;
		/* Same syntax as OTEL_RESOURCE_ATTRIBUTES: k=v pairs, percent-encoded. */
		err = otlp__parse_resource_attrs(env, &kv, &n);
		if (err) {
			fprintf(stderr,
				"pipeline: %s: expected key=value pairs separated by commas\n",
				name);
			return -EINVAL;
		}
		for (size_t i = 0; i < n && !err; i++) {
			if (strpbrk(kv[i].key, "\r\n:") || strpbrk(kv[i].value, "\r\n")) {
				fprintf(stderr,
					"pipeline: %s: header '%s' has a forbidden character\n",
					name, kv[i].key);
				err = -EINVAL;
				break;
			}
			err = add_header(s, kv[i].key, strlen(kv[i].key), kv[i].value);
		}
		free(kv);
		if (err)
			return err;
	}
	for (unsigned i = 0; i < cfg->n_otlp_headers; i++) {
		const char *eq = strchr(cfg->otlp_headers[i], '=');
		err = add_header(s, cfg->otlp_headers[i], (size_t)(eq - cfg->otlp_headers[i]),
				 eq + 1);
		if (err)
			return err;
	}
	return 0;
}

static int resolve_compression(const struct pipeline_config *cfg, bool *gzip)
{
	const char *name = "--otlp-compression";
	const char *v =
		cfg->otlp_compression ? cfg->otlp_compression : otel_env("COMPRESSION", &name);
	if (!v || !strcmp(v, "gzip")) {
		*gzip = true;
		return 0;
	}
	if (!strcmp(v, "none")) {
		*gzip = false;
		return 0;
	}
	fprintf(stderr, "pipeline: %s: '%s' is not gzip or none\n", name, v);
	return -EINVAL;
}

static int resolve_timeout(const struct pipeline_config *cfg, unsigned *ms)
{
	const char *name = NULL;
	const char *v = otel_env("TIMEOUT", &name);
	*ms = 10000;
	if (cfg->otlp_timeout_ms) {
		*ms = cfg->otlp_timeout_ms;
	} else if (v) {
		char *end;
		errno = 0;
		unsigned long t = strtoul(v, &end, 10);
		if (errno || *end || t == 0 || t > 600000) {
			fprintf(stderr, "pipeline: %s: '%s' is not a timeout of 1-600000 ms\n",
				name, v);
			return -EINVAL;
		}
		*ms = (unsigned)t;
	}
	return 0;
}

static int resolve_resource_attrs(struct otlp_setup *s)
{
	const char *env = getenv("OTEL_RESOURCE_ATTRIBUTES");
	const char *service = getenv("OTEL_SERVICE_NAME");
	if (env && otlp__parse_resource_attrs(env, &s->env_attrs, &s->n_env_attrs)) {
		fprintf(stderr, "pipeline: OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs "
				"separated by commas\n");
		return -EINVAL;
	}
	s->resource_attrs = calloc(s->n_env_attrs + 1, sizeof(*s->resource_attrs));
	if (!s->resource_attrs)
		return -ENOMEM;
	/* OTEL_SERVICE_NAME takes precedence over service.name in the list. */
	for (size_t i = 0; i < s->n_env_attrs; i++)
		if (!(service && *service && !strcmp(s->env_attrs[i].key, "service.name")))
			s->resource_attrs[s->n_resource_attrs++] = s->env_attrs[i];
	if (service && *service)
		s->resource_attrs[s->n_resource_attrs++] =
			(struct otlp_attr){.key = "service.name", .value = service};
	return 0;
}

int otlp_setup__init(struct otlp_setup *s, const struct pipeline_config *cfg)
{
	int err;
	memset(s, 0, sizeof(*s));
	err = resolve_url(s, cfg);
	if (err || !s->enabled)
		return err;
	bool gzip = true;
	unsigned timeout_ms = 10000;
	if ((err = resolve_headers(s, cfg)) || (err = resolve_compression(cfg, &gzip)) ||
	    (err = resolve_timeout(cfg, &timeout_ms)) || (err = resolve_resource_attrs(s)))
		return err == -ENOMEM ? err : -EINVAL;

	snprintf(s->user_agent, sizeof(s->user_agent), "pipeline/%s", PIPELINE_VERSION);
	if (cfg->otlp_file) {
		snprintf(s->file_dir, sizeof(s->file_dir), "%s/otlp", cfg->output);
		/* The output directory itself is checked later, with the file sink. */
		if ((mkdir(cfg->output, 0755) && errno != EEXIST) ||
		    (mkdir(s->file_dir, 0755) && errno != EEXIST)) {
			fprintf(stderr, "pipeline: cannot create %s: %s\n", s->file_dir,
				strerror(errno));
			return -errno;
		}
	}
	s->exporter = (struct otlp_exporter_opts){
		.url = s->url,
		.headers = (const char *const *)s->headers,
		.n_headers = s->n_headers,
		.gzip = gzip,
		.timeout_ms = timeout_ms,
		.max_queue_bytes = cfg->export_queue_bytes,
		.user_agent = s->user_agent,
		.ca_file = cfg->otlp_ca,
		.insecure_skip_verify = cfg->otlp_insecure,
		.file_dir = cfg->otlp_file ? s->file_dir : NULL,
	};
	s->encoder = (struct otlp_encode_opts){
		.agent_name = "pipeline",
		.agent_version = PIPELINE_VERSION,
		.resource_attrs = s->resource_attrs,
		.n_resource_attrs = s->n_resource_attrs,
		.timestamps = cfg->otlp_timestamps,
		.max_request_bytes = cfg->otlp_max_request_bytes,
	};
	return 0;
}

void otlp_setup__deinit(struct otlp_setup *s)
{
	for (size_t i = 0; i < s->n_headers; i++)
		free(s->headers[i]);
	free(s->headers);
	free(s->url);
	free(s->env_attrs);
	free(s->resource_attrs);
	memset(s, 0, sizeof(*s));
}
