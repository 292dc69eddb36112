"""Rendering at the edge: monitoring charts (SM-4) and invoice documents.

Submodules import their rendering libraries (matplotlib, plotly) themselves, so importing this
package stays cheap.
"""
