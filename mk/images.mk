# Container images: one per deployable (images/<name>/Dockerfile, context = the repository
# root). Built with Docker when an engine answers, else with buildah on local Debian/Python
# bases (debootstrap, cached outside the clone). images/build.sh does the work.
#
# IMAGE_TAG: the commit, plus -dirty when the work tree has changes; mk/k8s.mk deploys it.
ifeq ($(origin IMAGE_TAG),undefined)
  IMAGE_TAG := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)$(shell \
                 [ -z "$$(git status --porcelain 2>/dev/null)" ] || echo -dirty)
endif
export IMAGE_TAG
# IMAGES=murmur-users,... builds/loads only those; KIND_CLUSTER or MINIKUBE_PROFILE loads
# them into that cluster (Docker); IMAGE_SOURCE sets org.opencontainers.image.source.
IMAGES ?=
IMAGES_BUILD := PY=$(PY) bash images/build.sh
IMAGE_NAMES = $(subst $(comma), ,$(IMAGES))
comma := ,

.PHONY: images images-base images-stage images-build images-load images-sizes images-tag

images: ## Build every image (NAME:IMAGE_TAG), load it into the running cluster, print sizes
	@$(IMAGES_BUILD) all $(IMAGE_NAMES)

images-base: ## The local Debian (debootstrap, cached) and Python base images (buildah only)
	@$(IMAGES_BUILD) base

images-stage: ## Stage the build inputs (wheels of the runtime pins, Kafka/Cassandra jars)
	@$(IMAGES_BUILD) stage

images-build: ## Build the images (IMAGES=a,b for some) without loading them anywhere
	@$(IMAGES_BUILD) build $(IMAGE_NAMES)

images-load: ## Load the built images into the local cluster (or print kind/minikube commands)
	@$(IMAGES_BUILD) load $(IMAGE_NAMES)

images-sizes: ## A table of the images' sizes
	@$(IMAGES_BUILD) sizes $(IMAGE_NAMES)

images-tag: ## Print the tag the images get (IMAGE_TAG)
	@echo $(IMAGE_TAG)
