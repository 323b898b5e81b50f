"""PNG figures of the reports. matplotlib is optional (requirements/optional.txt): imported when a plot is drawn."""
import io


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches, drawn off-screen (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout='constrained')
    FigureCanvasAgg(figure)
    return figure


def finish_axes(axes, **labels) -> None:
    """Title and axis labels (``axes.set``), a light grid and a small legend."""
    axes.set(**labels)
    axes.grid(alpha=0.3)
    axes.legend(fontsize='small')


def to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100)
    return buffer.getvalue()
