package controlplane

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// listWatcher is a typed client's List and Watch (Workflows, Pods, ...).
type listWatcher[L k8sruntime.Object] interface {
	List(context.Context, metav1.ListOptions) (L, error)
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}

// until lists then watches the objects c serves, narrowed by narrow, until
// seen returns true for one of obj's type T (or ctx ends).
func until[T k8sruntime.Object, L k8sruntime.Object](ctx context.Context, c listWatcher[L], obj T, narrow func(*metav1.ListOptions), seen func(T) bool) error {
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (k8sruntime.Object, error) {
			narrow(&o)
			return c.List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			narrow(&o)
			return c.Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, obj, nil, func(ev watch.Event) (bool, error) {
		obj, ok := ev.Object.(T)
		return ok && seen(obj), nil
	})
	return err
}
