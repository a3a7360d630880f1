/* ed25519.c — Ed25519 via OpenSSL 3 EVP (one-shot DigestSign/Verify, NULL md),
 * public-key text form, PKCS#8 PEM private-key files. */
#include "crypto/ed25519.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/b64.h"
#include "crypto/cmsg.h"

#define PUB_PREFIX "ed25519:"
#define PUB_PREFIX_LEN 8
/* Bytes read from a key file at most: a PEM key is ~119 bytes; anything this
 * large is not an Ed25519 key file. */
#define KEYFILE_MAX 4096

void ed25519_keypair_wipe(struct ed25519_keypair *kp)
{
	if (kp)
		OPENSSL_cleanse(kp, sizeof *kp);
}

/* EVP_PKEY from a seed; NULL on failure. */
static EVP_PKEY *pkey_from_seed(const uint8_t seed[ED25519_SEED_LEN])
{
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, ED25519_SEED_LEN);
}

static allot_err keypair_from_pkey(EVP_PKEY *pk, struct ed25519_keypair *kp)
{
	struct ed25519_keypair tmp;
	size_t pl = sizeof tmp.pub, sl = sizeof tmp.seed;

	if (EVP_PKEY_get_raw_public_key(pk, tmp.pub, &pl) != 1 ||
	    EVP_PKEY_get_raw_private_key(pk, tmp.seed, &sl) != 1 || pl != ED25519_PUB_LEN ||
	    sl != ED25519_SEED_LEN) {
		ed25519_keypair_wipe(&tmp);
		return ALLOT_E_INTERNAL;
	}
	*kp = tmp;
	ed25519_keypair_wipe(&tmp);
	return ALLOT_OK;
}

allot_err ed25519_keygen(struct ed25519_keypair *kp)
{
	uint8_t seed[ED25519_SEED_LEN];
	allot_err e;

	if (RAND_priv_bytes(seed, sizeof seed) != 1)
		return ALLOT_E_INTERNAL;
	e = ed25519_from_seed(seed, kp);
	OPENSSL_cleanse(seed, sizeof seed);
	return e;
}

allot_err ed25519_from_seed(const uint8_t seed[ED25519_SEED_LEN], struct ed25519_keypair *kp)
{
	EVP_PKEY *pk = pkey_from_seed(seed);
	allot_err e;

	if (!pk)
		return ALLOT_E_NOMEM;
	e = keypair_from_pkey(pk, kp);
	EVP_PKEY_free(pk);
	return e;
}

allot_err ed25519_sign(const struct ed25519_keypair *kp, const void *msg, size_t n,
		       uint8_t sig[ED25519_SIG_LEN])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	uint8_t out[ED25519_SIG_LEN];
	size_t sl = sizeof out;
	allot_err e = ALLOT_E_INTERNAL;

	if (!(pk = pkey_from_seed(kp->seed)) || !(ctx = EVP_MD_CTX_new())) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, out, &sl, msg, n) != 1 || sl != ED25519_SIG_LEN)
		goto out;
	memcpy(sig, out, sizeof out);
	e = ALLOT_OK;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return e;
}

allot_err ed25519_verify(const uint8_t pub[ED25519_PUB_LEN], const void *msg, size_t n,
			 const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	allot_err e = ALLOT_E_INTERNAL;
	int r;

	if (siglen != ED25519_SIG_LEN || !sig)
		return ALLOT_E_UNAUTHORIZED;
	if (!(pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_PUB_LEN)) ||
	    !(ctx = EVP_MD_CTX_new())) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1)
		goto out;
	r = EVP_DigestVerify(ctx, sig, siglen, msg, n);
	/* 1: valid; 0: invalid; negative: malformed (e.g. bad point). */
	e = r == 1 ? ALLOT_OK : ALLOT_E_UNAUTHORIZED;
	if (r != 1)
		ERR_clear_error(); /* leave no stale entries in the thread's queue */
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return e;
}

struct ed25519_verifier {
	EVP_PKEY *pk;
};

allot_err ed25519_verifier_new(const uint8_t pub[ED25519_PUB_LEN], struct ed25519_verifier **out)
{
	struct ed25519_verifier *v = calloc(1, sizeof *v);
	if (!v)
		return ALLOT_E_NOMEM;
	if (!(v->pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_PUB_LEN))) {
		free(v);
		ERR_clear_error();
		return ALLOT_E_INVALID;
	}
	*out = v;
	return ALLOT_OK;
}

void ed25519_verifier_free(struct ed25519_verifier *v)
{
	if (!v)
		return;
	EVP_PKEY_free(v->pk);
	free(v);
}

allot_err ed25519_verifier_check(const struct ed25519_verifier *v, const void *msg, size_t n,
				 const uint8_t *sig, size_t siglen)
{
	if (siglen != ED25519_SIG_LEN || !sig)
		return ALLOT_E_UNAUTHORIZED;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return ALLOT_E_NOMEM;
	allot_err e = ALLOT_E_INTERNAL;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pk) == 1) {
		int r = EVP_DigestVerify(ctx, sig, siglen, msg, n);
		e = r == 1 ? ALLOT_OK : ALLOT_E_UNAUTHORIZED;
	}
	if (e)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return e;
}

char *ed25519_pub_format(const uint8_t pub[ED25519_PUB_LEN], char out[ED25519_PUB_TEXT_MAX])
{
	memcpy(out, PUB_PREFIX, PUB_PREFIX_LEN);
	b64_encode(pub, ED25519_PUB_LEN, out + PUB_PREFIX_LEN);
	return out;
}

allot_err ed25519_pub_parse(const char *s, size_t n, uint8_t pub[ED25519_PUB_LEN], char *msg,
			    size_t msgcap)
{
	uint8_t tmp[ED25519_PUB_LEN + 3];
	size_t len;

	if (n < PUB_PREFIX_LEN || memcmp(s, PUB_PREFIX, PUB_PREFIX_LEN) != 0)
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "public key must start with \"ed25519:\"");
	if (b64_decode(s + PUB_PREFIX_LEN, n - PUB_PREFIX_LEN, tmp, sizeof tmp, &len) != ALLOT_OK)
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "public key is not canonical padded base64");
	if (len != ED25519_PUB_LEN)
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "public key is %zu bytes, want %d", len, ED25519_PUB_LEN);
	memcpy(pub, tmp, ED25519_PUB_LEN);
	return ALLOT_OK;
}

allot_err ed25519_private_to_pem(const struct ed25519_keypair *kp, char out[ED25519_PEM_MAX],
				 size_t *len)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *p;
	long n;
	allot_err e = ALLOT_E_INTERNAL;

	if (!(pk = pkey_from_seed(kp->seed)) || !(bio = BIO_new(BIO_s_secmem()))) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &p);
	if (n <= 0 || (size_t)n >= ED25519_PEM_MAX)
		goto out;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	e = ALLOT_OK;
out:
	BIO_free(bio); /* a secure-memory BIO is cleansed on free */
	EVP_PKEY_free(pk);
	return e;
}

allot_err ed25519_private_from_pem(const char *pem, size_t n, struct ed25519_keypair *kp,
				   char *msg, size_t msgcap)
{
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	allot_err e;

	if (n > KEYFILE_MAX || n > INT_MAX)
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "private key is too large (%zu bytes)", n);
	if (!(bio = BIO_new_mem_buf(pem, (int)n)))
		return cmsg(ALLOT_E_NOMEM, msg, msgcap, "out of memory");
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!pk)
		return cmsg(ALLOT_E_INVALID, msg, msgcap,
			    "not an unencrypted PEM \"PRIVATE KEY\" (PKCS#8)");
	if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pk);
		return cmsg(ALLOT_E_INVALID, msg, msgcap, "private key is not an Ed25519 key");
	}
	e = keypair_from_pkey(pk, kp);
	EVP_PKEY_free(pk);
	if (e != ALLOT_OK)
		return cmsg(e, msg, msgcap, "cannot extract the Ed25519 key");
	return ALLOT_OK;
}

/* Directory part of path into dir (".", when none). */
static int dir_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return snprintf(dir, cap, ".") < (int)cap ? 0 : -1;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return -1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

allot_err ed25519_private_write(const char *path, const struct ed25519_keypair *kp, int overwrite,
				char *msg, size_t msgcap)
{
	char pem[ED25519_PEM_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	size_t len = 0;
	int fd = -1, dfd = -1, made = 0;
	allot_err e;
	struct stat st;

	if (!overwrite && lstat(path, &st) == 0)
		return cmsg(ALLOT_E_CONFLICT, msg, msgcap, "%s already exists", path);
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp ||
	    dir_of(path, dir, sizeof dir) < 0)
		return cmsg(ALLOT_E_IO, msg, msgcap, "path too long: %s", path);
	if ((e = ed25519_private_to_pem(kp, pem, &len)) != ALLOT_OK)
		return cmsg(e, msg, msgcap, "cannot encode the private key");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		e = cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	made = 1;
	/* The umask cannot widen 0600, but an inherited ACL default might. */
	if (fchmod(fd, 0600) < 0 || write_all(fd, pem, len) < 0 || fsync(fd) < 0) {
		e = cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		e = cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (!overwrite && lstat(path, &st) == 0) {
		e = cmsg(ALLOT_E_CONFLICT, msg, msgcap, "%s already exists", path);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		e = cmsg(ALLOT_E_IO, msg, msgcap, "rename to %s: %s", path, strerror(errno));
		goto out;
	}
	made = 0;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
		e = cmsg(ALLOT_E_IO, msg, msgcap, "fsync of %s: %s", dir, strerror(errno));
		goto out;
	}
	e = ALLOT_OK;
out:
	OPENSSL_cleanse(pem, sizeof pem);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (made)
		unlink(tmp);
	return e;
}

allot_err ed25519_private_read(const char *path, struct ed25519_keypair *kp, char *msg,
			       size_t msgcap)
{
	char data[KEYFILE_MAX + 1];
	size_t len = 0;
	struct stat st;
	allot_err e;
	int fd;

	/* Symbolic links are followed (secret mounts are often links); the
	 * checks below apply to the file actually opened. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		e = cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		e = cmsg(ALLOT_E_FORBIDDEN, msg, msgcap, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		e = cmsg(ALLOT_E_FORBIDDEN, msg, msgcap,
			 "%s: private key is accessible by group or others (mode %04o); "
			 "run chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, data + len, sizeof data - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = cmsg(ALLOT_E_IO, msg, msgcap, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == sizeof data) {
			e = cmsg(ALLOT_E_INVALID, msg, msgcap, "%s: too large for a key file", path);
			goto out;
		}
	}
	e = ed25519_private_from_pem(data, len, kp, msg, msgcap);
	if (e != ALLOT_OK && msg && msgcap) {
		char reason[128];
		snprintf(reason, sizeof reason, "%s", msg);
		cmsg(e, msg, msgcap, "%s: %s", path, reason);
	}
out:
	OPENSSL_cleanse(data, sizeof data);
	close(fd);
	return e;
}
