package assetstore

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3PartSize is the part size of multipart uploads; files above it are
// uploaded in parts, smaller ones in one PutObject.
const S3PartSize = 16 << 20

// md5Meta is the user metadata key (x-amz-meta-md5) holding the hex MD5 of
// the whole object: the ETag of an object uploaded in parts is not its MD5.
const md5Meta = "md5"

// S3 is a bucket and prefix on an S3-compatible service.
type S3 struct {
	bucket, prefix string
	client         *s3.Client
	uploader       *manager.Uploader
}

// newS3 builds a client from the standard credential chain (environment,
// shared config and credentials files, web identity, container and instance
// roles) with the SDK's adaptive retry mode.
func newS3(ctx context.Context, bucket, prefix string, c Options) (*S3, error) {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = 10
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		// keep a connection per worker (and per part of a large file) alive
		t.MaxIdleConns = 4 * c.Concurrency
		t.MaxIdleConnsPerHost = 4 * c.Concurrency
		t.IdleConnTimeout = 30 * time.Second
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = c.MaxAttempts
					so.MaxBackoff = 5 * time.Second
					// Every request already has its own attempt budget; the
					// shared retry quota would fail a large upload outright
					// after a burst of errors that the budget rides out.
					so.RateLimiter = ratelimit.None
				})
			})
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = c.PathStyle
		if c.EndpointURL != "" {
			o.BaseEndpoint = aws.String(c.EndpointURL)
		}
		// Integrity comes from Content-MD5 (single PUTs) and the MD5 we
		// compare on every re-run; skipping the SDK's own checksums and the
		// payload SHA-256 saves a pass over every byte.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	//lint:ignore SA1019 the issue asks for feature/s3/manager; it streams parts from an io.ReaderAt without buffering them.
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = S3PartSize
		u.Concurrency = 4
		u.LeavePartsOnError = false
	})
	return &S3{bucket: bucket, prefix: prefix, client: client, uploader: uploader}, nil
}

func (s *S3) String() string {
	return Destination{Scheme: "s3", Bucket: s.bucket, Prefix: s.prefix}.String()
}

func (s *S3) PartSize() int64 { return S3PartSize }

func (s *S3) key(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

func (s *S3) listPrefix() string {
	if s.prefix == "" {
		return ""
	}
	return s.prefix + "/"
}

// List pages through ListObjectsV2 below the prefix.
func (s *S3) List(ctx context.Context) (map[string]Object, error) {
	objs := map[string]Object{}
	prefix := s.listPrefix()
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s, classify(err))
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			objs[key] = Object{Key: key, Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`)}
		}
	}
	return objs, nil
}

// ETag is the ETag S3 gives c as Put uploads it: the MD5 for one PUT, the
// MD5 of the parts' MD5s and "-N" for a multipart upload.
func ETag(c Content) string {
	if len(c.PartMD5s) == 0 {
		return hex.EncodeToString(c.MD5[:])
	}
	var all []byte
	for _, p := range c.PartMD5s {
		all = append(all, p[:]...)
	}
	sum := md5.Sum(all)
	return hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(len(c.PartMD5s))
}

// Same compares size and ETag. When the sizes match but the ETag does not
// (an object uploaded in parts of another size, or encrypted with SSE-KMS,
// whose ETag is not an MD5), its md5 metadata decides.
func (s *S3) Same(ctx context.Context, obj Object, c Content) (bool, error) {
	if obj.Size != c.Size {
		return false, nil
	}
	if strings.EqualFold(obj.ETag, ETag(c)) {
		return true, nil
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(obj.Key)),
	})
	if err != nil {
		return false, fmt.Errorf("head %s: %w", obj.Key, classify(err))
	}
	return strings.EqualFold(head.Metadata[md5Meta], hex.EncodeToString(c.MD5[:])), nil
}

// Put streams body: one PutObject with Content-MD5, or a multipart upload
// reading each part straight from it (at its offset, unbuffered).
func (s *S3) Put(ctx context.Context, key string, body Body, c Content, meta Metadata) error {
	in := &s3.PutObjectInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(s.key(key)),
		Body:            body,
		ContentLength:   aws.Int64(c.Size),
		ContentType:     unlessEmpty(meta.ContentType),
		CacheControl:    unlessEmpty(meta.CacheControl),
		ContentEncoding: unlessEmpty(meta.ContentEncoding),
		Metadata:        map[string]string{md5Meta: hex.EncodeToString(c.MD5[:])},
	}
	var err error
	if c.Size <= S3PartSize {
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(c.MD5[:]))
		_, err = s.client.PutObject(ctx, in)
	} else {
		_, err = s.uploader.Upload(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, classify(err))
	}
	return nil
}

// unlessEmpty leaves a header out rather than send it empty.
func unlessEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return aws.String(v)
}

// classify marks a missing bucket with ErrNoBucket and refused credentials,
// signatures or regions with ErrRefused.
func classify(err error) error {
	var nsb *types.NoSuchBucket
	var api smithy.APIError
	if errors.As(err, &nsb) || (errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket") {
		return fmt.Errorf("%w: %w", ErrNoBucket, err)
	}
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthorizationHeaderMalformed", "InvalidToken", "ExpiredToken", "PermanentRedirect":
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	return err
}
