"""The demo: a bundled mini news web site to crawl, and the runner that materializes the graph.

* :mod:`.site_manifest`, :mod:`.site_content`, :mod:`.site_render`, :mod:`.site_build` and
  :mod:`.site_server`: a site built from real Urdu, Tamil and English text that looks like
  several real news sites (boilerplate, timestamps, cross-posts, problem pages), with a
  ``manifest.json`` of the ground truth, served on 127.0.0.1 (``DemoSite`` resource).
* :mod:`.runner`: ``python -m vazhi_assets.demo`` materializes the default graph end to end.
"""
