# SPDX-License-Identifier: Apache-2.0
# The reference manual: `make docs` runs doxygen (when configure found
# it) on the public header into docs/reference/ of the build directory,
# and fails on any doxygen warning (an undocumented public member is one).
# `make install` installs the HTML when it was built, under
# $(htmldir)/reference, and a link page per exported function so that
# `man pebble_future_get` opens the page of its area.
# tools/check-reference.sh (make check) checks that every exported
# function has its entry, with or without doxygen.
TESTS += tools/check-reference.sh
EXTRA_DIST += docs/Doxyfile.in docs/reference.dox tools/check-reference.sh \
	tools/man-links.sh

pebble_reference_deps = docs/Doxyfile $(top_srcdir)/api/pebble.h \
	api/pebble_version.h $(top_srcdir)/docs/reference.dox

# docs/ is also a directory: pebble-docs-force makes `make docs` run
# whatever its date (.PHONY cannot be set inside a condition).
pebble-docs-force:
if HAVE_DOXYGEN
docs: docs/reference/html/index.html pebble-docs-force
	@echo "make docs: the reference is in docs/reference/html/index.html"

docs/reference/html/index.html: $(pebble_reference_deps)
	$(AM_V_GEN)rm -rf docs/reference && $(MKDIR_P) docs/reference && \
	$(DOXYGEN) docs/Doxyfile && \
	if test -s docs/reference/warnings.log; then \
	  cat docs/reference/warnings.log >&2; \
	  echo "make docs: doxygen warned (above); every public declaration of api/pebble.h needs its entry" >&2; \
	  rm -f $@; exit 1; \
	fi
else
docs: pebble-docs-force
	@echo "make docs: doxygen was not found by configure, so the HTML reference is not built"; \
	echo "  (install doxygen, e.g. apt-get install doxygen, and run configure again)."; \
	echo "  The manual pages are built by make: man ./docs/man/pebble.3"
endif

# (clean-local is tests/core.mk's.)
mostlyclean-local:
	-rm -rf docs/reference

install-data-local: install-reference
install-reference:
	@if test -f docs/reference/html/index.html; then \
	  echo " installing the HTML reference in $(DESTDIR)$(htmldir)/reference"; \
	  $(MKDIR_P) "$(DESTDIR)$(htmldir)/reference" && \
	  $(INSTALL_DATA) docs/reference/html/* "$(DESTDIR)$(htmldir)/reference/"; \
	else \
	  echo " the HTML reference is not built (make docs): not installed"; \
	fi

# One link page per exported function, to the page that declares it.
install-data-hook: install-man-links
install-man-links:
	$(MKDIR_P) "$(DESTDIR)$(man3dir)" && \
	$(SHELL) $(top_srcdir)/tools/man-links.sh $(top_srcdir) > man-links.tmp && \
	while read fn page; do \
	  echo ".so man3/$$page" > "$(DESTDIR)$(man3dir)/$$fn.3" || exit 1; \
	done < man-links.tmp; rm -f man-links.tmp

uninstall-local: uninstall-reference-and-links
uninstall-reference-and-links:
	-rm -rf "$(DESTDIR)$(htmldir)/reference"
	$(SHELL) $(top_srcdir)/tools/man-links.sh $(top_srcdir) | \
	while read fn page; do rm -f "$(DESTDIR)$(man3dir)/$$fn.3"; done
