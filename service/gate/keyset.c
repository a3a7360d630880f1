/* keyset.c — token signing keys on disk and in memory. */
#include "gate/keyset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/timeutil.h"

struct keyset_key {
	char kid[PASETO_KID_MAX + 1];
	struct ed25519_keypair kp;
	int64_t created;              /* seconds, from the kid */
};

struct keyset {
	char dir[512];
	pthread_rwlock_t lock;
	struct keyset_key keys[KEYSET_MAX];
	size_t n;
	size_t current;               /* index of the newest */
};

static bool kid_parse(const char *name, char kid[PASETO_KID_MAX + 1], int64_t *created)
{
	size_t n = strlen(name);
	if (n < 6 || n - 4 > PASETO_KID_MAX || strcmp(name + n - 4, ".key") != 0 || name[0] != 'k')
		return false;
	char *end;
	long long secs = strtoll(name + 1, &end, 10);
	if (*end != '-' || secs <= 0)
		return false;
	for (const char *p = end + 1; p < name + n - 4; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	memcpy(kid, name, n - 4);
	kid[n - 4] = '\0';
	*created = secs;
	return true;
}

static void pick_current(struct keyset *ks)
{
	ks->current = 0;
	for (size_t i = 1; i < ks->n; i++)
		if (ks->keys[i].created > ks->keys[ks->current].created ||
		    (ks->keys[i].created == ks->keys[ks->current].created &&
		     strcmp(ks->keys[i].kid, ks->keys[ks->current].kid) > 0))
			ks->current = i;
}

static allot_err keyset_add_locked(struct keyset *ks, char kid[PASETO_KID_MAX + 1], char *msg,
				   size_t msgsz)
{
	if (ks->n == KEYSET_MAX) {
		snprintf(msg, msgsz, "%s holds %d keys already; remove expired ones", ks->dir, KEYSET_MAX);
		return ALLOT_E_CONFLICT;
	}
	uint8_t rnd[4];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return ALLOT_E_INTERNAL;
	struct keyset_key *k = &ks->keys[ks->n];
	k->created = time_now_us() / US_PER_SEC;
	/* A key made in the same second as the newest takes the next second, so
	 * that it sorts after it and signs, now and after a restart. */
	if (ks->n && k->created <= ks->keys[ks->current].created)
		k->created = ks->keys[ks->current].created + 1;
	snprintf(k->kid, sizeof k->kid, "k%lld-%02x%02x%02x%02x", (long long)k->created, rnd[0],
		 rnd[1], rnd[2], rnd[3]);
	allot_err e = ed25519_keygen(&k->kp);
	if (e)
		return e;
	char path[600];
	snprintf(path, sizeof path, "%s/%s.key", ks->dir, k->kid);
	if ((e = ed25519_private_write(path, &k->kp, 0, msg, msgsz))) {
		ed25519_keypair_wipe(&k->kp);
		return e;
	}
	ks->n++;
	pick_current(ks);
	snprintf(kid, PASETO_KID_MAX + 1, "%s", k->kid);
	return ALLOT_OK;
}

/* ---- the keys directory -------------------------------------------------------- */

allot_err keyset_dir_prepare(const char *dir, char *msg, size_t msgsz)
{
	struct stat sb;
	if (stat(dir, &sb) < 0) {
		if (errno != ENOENT || mkdir(dir, 0700) < 0 || chmod(dir, 0700) < 0) {
			snprintf(msg, msgsz, "cannot create the keys directory %s: %s", dir,
				 strerror(errno));
			return ALLOT_E_IO;
		}
		return ALLOT_OK;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(msg, msgsz, "the keys directory %s is not a directory", dir);
		return ALLOT_E_INVALID;
	}
	if (sb.st_mode & 077) {
		snprintf(msg, msgsz,
			 "the keys directory %s is open to its group or others (mode %04o); it "
			 "holds private keys: run chmod 700 %s",
			 dir, (unsigned)(sb.st_mode & 07777), dir);
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

static bool is_key_name(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".key") == 0;
}

allot_err keyset_dir_has_keys(const char *dir, bool *has, char *name, size_t namesz, char *msg,
			      size_t msgsz)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(msg, msgsz, "cannot read the keys directory %s: %s", dir, strerror(errno));
		return ALLOT_E_IO;
	}
	*has = false;
	name[0] = '\0';
	struct dirent *de;
	while ((de = readdir(d)))
		if (is_key_name(de->d_name)) {
			/* The log key first: it is what a fork would reuse. */
			if (!*has || strcmp(de->d_name, "log.key") == 0)
				snprintf(name, namesz, "%s", de->d_name);
			*has = true;
		}
	closedir(d);
	return ALLOT_OK;
}

/* Creates dir/retired-<UTC time>[-N] mode 0700.  OUT: sub. */
static allot_err retired_dir_make(const char *dir, char *sub, size_t subsz, char *msg,
				  size_t msgsz)
{
	time_t now = (time_t)(time_now_us() / US_PER_SEC);
	struct tm tm;
	char stamp[32];
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 1; i < 100; i++) {
		int n = i == 1 ? snprintf(sub, subsz, "%s/retired-%s", dir, stamp)
			       : snprintf(sub, subsz, "%s/retired-%s-%d", dir, stamp, i);
		if (n < 0 || (size_t)n >= subsz) {
			snprintf(msg, msgsz, "keys directory path too long: %s", dir);
			return ALLOT_E_INVALID;
		}
		if (mkdir(sub, 0700) == 0)
			return ALLOT_OK;
		if (errno != EEXIST)
			break;
	}
	snprintf(msg, msgsz, "cannot create %s: %s", sub, strerror(errno));
	return ALLOT_E_IO;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

allot_err keyset_dir_retire(const char *dir, char *sub, size_t subsz, char *msg, size_t msgsz)
{
	allot_err e = retired_dir_make(dir, sub, subsz, msg, msgsz);
	if (e)
		return e;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(msg, msgsz, "cannot read the keys directory %s: %s", dir, strerror(errno));
		return ALLOT_E_IO;
	}
	struct dirent *de;
	while ((de = readdir(d)) && !e) {
		if (!is_key_name(de->d_name))
			continue;
		char from[1024], to[1024];
		if ((size_t)snprintf(from, sizeof from, "%s/%s", dir, de->d_name) >= sizeof from ||
		    (size_t)snprintf(to, sizeof to, "%s/%s", sub, de->d_name) >= sizeof to) {
			snprintf(msg, msgsz, "key path too long in %s", dir);
			e = ALLOT_E_INVALID;
		} else if (rename(from, to) < 0) {
			snprintf(msg, msgsz, "cannot move %s to %s: %s", from, sub, strerror(errno));
			e = ALLOT_E_IO;
		}
	}
	closedir(d);
	/* The moves are durable before a new key can take an old one's name. */
	if (!e && (fsync_dir(sub) < 0 || fsync_dir(dir) < 0)) {
		snprintf(msg, msgsz, "cannot sync %s: %s", dir, strerror(errno));
		e = ALLOT_E_IO;
	}
	return e;
}

/* ---- loading and rotating -------------------------------------------------------- */

allot_err keyset_open(const char *dir, struct keyset **out, char *msg, size_t msgsz)
{
	struct keyset *ks = calloc(1, sizeof *ks);
	if (!ks)
		return ALLOT_E_NOMEM;
	snprintf(ks->dir, sizeof ks->dir, "%s", dir);
	pthread_rwlock_init(&ks->lock, NULL);
	if (keyset_dir_prepare(dir, msg, msgsz))
		goto fail;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(msg, msgsz, "cannot read key directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	struct dirent *de;
	allot_err e = ALLOT_OK;
	while ((de = readdir(d)) && !e) {
		char kid[PASETO_KID_MAX + 1];
		int64_t created;
		if (!kid_parse(de->d_name, kid, &created))
			continue;
		if (ks->n == KEYSET_MAX) {
			snprintf(msg, msgsz, "%s holds more than %d keys", dir, KEYSET_MAX);
			e = ALLOT_E_INVALID;
			break;
		}
		char path[600];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct keyset_key *k = &ks->keys[ks->n];
		if ((e = ed25519_private_read(path, &k->kp, msg, msgsz)))
			break;
		snprintf(k->kid, sizeof k->kid, "%s", kid);
		k->created = created;
		ks->n++;
	}
	closedir(d);
	if (e)
		goto fail;
	if (ks->n == 0) {
		char kid[PASETO_KID_MAX + 1];
		if (keyset_add_locked(ks, kid, msg, msgsz))
			goto fail;
	}
	pick_current(ks);
	*out = ks;
	return ALLOT_OK;
fail:
	keyset_free(ks);
	return ALLOT_E_IO;
}

void keyset_free(struct keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		ed25519_keypair_wipe(&ks->keys[i].kp);
	pthread_rwlock_destroy(&ks->lock);
	free(ks);
}

allot_err keyset_rotate(struct keyset *ks, char kid[PASETO_KID_MAX + 1], char *msg,
			size_t msgsz)
{
	pthread_rwlock_wrlock(&ks->lock);
	allot_err e = keyset_add_locked(ks, kid, msg, msgsz);
	pthread_rwlock_unlock(&ks->lock);
	return e;
}

allot_err keyset_current(struct keyset *ks, struct ed25519_keypair *kp,
			 char kid[PASETO_KID_MAX + 1])
{
	pthread_rwlock_rdlock(&ks->lock);
	*kp = ks->keys[ks->current].kp;
	snprintf(kid, PASETO_KID_MAX + 1, "%s", ks->keys[ks->current].kid);
	pthread_rwlock_unlock(&ks->lock);
	return ALLOT_OK;
}

allot_err keyset_lookup(void *ctx, const char *kid, uint8_t pub[ED25519_PUB_LEN])
{
	struct keyset *ks = ctx;
	allot_err e = ALLOT_E_UNAUTHORIZED;
	pthread_rwlock_rdlock(&ks->lock);
	for (size_t i = 0; i < ks->n; i++)
		if (strcmp(ks->keys[i].kid, kid) == 0) {
			memcpy(pub, ks->keys[i].kp.pub, ED25519_PUB_LEN);
			e = ALLOT_OK;
			break;
		}
	pthread_rwlock_unlock(&ks->lock);
	return e;
}

json_t *keyset_public_json(struct keyset *ks)
{
	json_t *arr = json_array();
	pthread_rwlock_rdlock(&ks->lock);
	for (size_t i = 0; i < ks->n; i++) {
		char pub[ED25519_PUB_TEXT_MAX], ts[TIME_FMT_MAX];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:b}", "kid", ks->keys[i].kid,
			"public", ed25519_pub_format(ks->keys[i].kp.pub, pub), "created",
			time_format_rfc3339(ks->keys[i].created * US_PER_SEC, ts), "current",
			i == ks->current));
	}
	pthread_rwlock_unlock(&ks->lock);
	return json_pack("{s:o}", "keys", arr);
}
