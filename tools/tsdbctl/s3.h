/*
 * s3.h - the S3 side of the backup store (bstore.c): objects of one bucket under a
 * prefix, through libcurl with its built-in AWS Signature Version 4.
 *
 * DEST is s3://bucket[/prefix]. Credentials come from the usual AWS environment
 * variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN when set);
 * the region from AWS_REGION or AWS_DEFAULT_REGION (default us-east-1). --s3-endpoint
 * (an http:// or https:// base URL) selects an S3-compatible server (MinIO, s3rver)
 * with path-style addressing; without it, https://<bucket>.s3.<region>.amazonaws.com.
 * Payloads are sent UNSIGNED-PAYLOAD (the body is covered by TLS and by our own
 * checksums, which restore checks).
 */
#ifndef TSDBCTL_S3_H
#define TSDBCTL_S3_H

#include <stddef.h>

struct s3;
typedef int (*s3_key_fn)(void *arg, const char *key);
int s3_open(const char *dest, const char *endpoint, struct s3 **out, char *why, size_t why_len);
void s3_close(struct s3 *s); /* accepts NULL */
int s3_exists(struct s3 *s, const char *key);
int s3_put(struct s3 *s, const char *key, const void *p, size_t len);
int s3_get(struct s3 *s, const char *key, size_t max, char **out, size_t *len);
int s3_del(struct s3 *s, const char *key);
int s3_keys(struct s3 *s, const char *prefix, s3_key_fn fn, void *arg);

#endif
